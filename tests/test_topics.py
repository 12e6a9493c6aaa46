"""Topic domains (TF-IDF + k-means clusters of a corpus), the math-v1 space, and held-out GSM templates."""

from __future__ import annotations

import pytest
import reasoning_gym

from mixing_gym import topics
from mixing_gym.domains import MATH_V1_HELDOUT_TEMPLATES, get_domain_space
from mixing_gym.prepare import split_documents
from mixing_gym.sources import CorpusSource, LicenseSource, NewsSource, ReasoningGymSource, gsm_templates
from mixing_gym.storage import fingerprint
from mixing_gym.topics import CLUSTERING_VERSION, TopicSource, topic_name, topic_terms

#: fingerprint(describe()) of v0's spaces, computed before math-v1 and the new source fields existed: v0's
#: prepared caches are keyed by them, so DataMixing-v0 stays reproducible only while they hold.
V0_FINGERPRINTS = {"math": "b58269ff8a", "code": "1ab40caa0a"}


def test_v0_spaces_are_unchanged():
    for name, expected in V0_FINGERPRINTS.items():
        assert fingerprint(get_domain_space(name).describe()) == expected
    assert ReasoningGymSource(("gsm_symbolic",)).describe() == {"kind": "reasoning_gym", "generators": ["gsm_symbolic"]}


def test_clustering_is_deterministic(monkeypatch):
    first = [TopicSource(NewsSource(), 2, topic).documents() for topic in range(2)]
    monkeypatch.setattr(topics, "_CLUSTERINGS", {})  # recompute rather than read this process's cache
    assert [TopicSource(NewsSource(), 2, topic).documents() for topic in range(2)] == first
    assert topics._CLUSTERINGS  # and the clustering is cached for the next topic


@pytest.mark.parametrize("base, count", [(NewsSource(), 2), (NewsSource(), 3), (LicenseSource(), 2)])
def test_topics_partition_the_corpus_in_its_order(base, count):
    documents = base.documents()
    parts = [TopicSource(base, count, topic).documents() for topic in range(count)]
    assert all(parts) and sorted(doc for part in parts for doc in part) == sorted(documents)
    assert all(not set(a) & set(b) for i, a in enumerate(parts) for b in parts[i + 1:])
    for part in parts:  # in the corpus's order (a duplicated document is in one topic, every time)
        members = set(part)
        assert part == [doc for doc in documents if doc in members]
    # Topics are numbered by their first document, whatever numbers k-means gave its clusters.
    firsts = [documents.index(part[0]) for part in parts]
    assert firsts == sorted(firsts) and firsts[0] == 0


def test_topic_identity_and_names():
    source = TopicSource(NewsSource(), 2, 1, seed=3)
    assert source.describe() == {"kind": "topic", "base": {"kind": "news"}, "topics": 2, "topic": 1, "seed": 3,
                                 "version": CLUSTERING_VERSION}
    assert fingerprint(source.describe()) != fingerprint(TopicSource(NewsSource(), 2, 0, seed=3).describe())
    terms = topic_terms(source, 4)
    assert len(terms) == 4 and all(isinstance(term, str) and term for term in terms)
    assert topic_name(source) == "/".join(terms[:3])
    with pytest.raises(ValueError, match="0 <= topic < topics"):
        TopicSource(NewsSource(), 2, 2)
    with pytest.raises(TypeError, match="CorpusSource"):
        TopicSource(ReasoningGymSource(), 2, 0)


def test_math_v1_space_has_the_papers_shape():
    space = get_domain_space("math-v1")
    assert space.name == "math-v1" and space.target_field == "math"
    assert len(space) >= 24 and len(space.source_names) >= 12 and len(space.target_names) >= 10
    assert all(name.isidentifier() for name in space.names)
    sources = [domain.source for domain in space.subspace("source")]
    assert all(isinstance(source, CorpusSource) for source in sources)
    assert sum(isinstance(source, TopicSource) for source in sources) >= 10
    targets = [domain.source for domain in space.subspace("target")]
    assert all(isinstance(source, ReasoningGymSource) and len(source.generators) == 1 for source in targets)
    generators = {source.generators[0]: source for source in targets}
    v0_families = {"basic_arithmetic", "chain_sum", "gsm_symbolic", "simple_equations", "fraction_simplification",
                   "gcd", "lcm", "prime_factorization", "number_sequence"}
    assert v0_families <= set(generators)
    assert generators["gsm_symbolic"].exclude_templates == MATH_V1_HELDOUT_TEMPLATES
    assert len(space.describe()["domains"]) == len({fingerprint(d) for d in space.describe()["domains"]})


@pytest.mark.slow
def test_every_math_v1_topic_has_enough_train_text():
    space = get_domain_space("math-v1")
    for domain in space.subspace("source"):
        train, _ = split_documents(domain.source.documents(), 0.05)
        assert sum(map(len, train)) >= 40_000, domain.name


def test_excluded_templates_are_left_out_and_made_up_for():
    excluded = (4, 13, 22, 31, 43)
    source = ReasoningGymSource(("gsm_symbolic",), exclude_templates=excluded)
    assert source.describe()["exclude_templates"] == list(excluded)
    problems = source.problems(seed=2, count=60)
    # Expected: the plain generator's stream with the excluded templates' problems dropped, in its order.
    size = 200
    plain = ReasoningGymSource(("gsm_symbolic",)).problems(seed=2, count=size)
    templates = reasoning_gym.create_dataset("gsm_symbolic", seed=2 * 1000, size=size).task_indices
    kept = [problem for problem, template in zip(plain, templates) if template not in excluded]
    assert len(problems) == 60 and problems == kept[:60]
    assert source.problems(seed=2, count=60) == problems

    held_out = source.heldout_template_problems(seed=2, count=20)
    expected = [problem for problem, template in zip(plain, templates) if template in excluded]
    shared = min(20, len(expected))  # those of the first 200 items; the rest come from drawing further
    assert len(held_out) == 20 and shared and held_out[:shared] == expected[:shared]
    assert not {p.context for p in held_out} & {p.context for p in source.problems(seed=5, count=200)}


def test_template_options_are_checked():
    assert set(MATH_V1_HELDOUT_TEMPLATES) < set(gsm_templates())
    with pytest.raises(ValueError, match="needs the generator 'gsm_symbolic'"):
        ReasoningGymSource(("gcd",), exclude_templates=(4,))
    with pytest.raises(ValueError, match="never draws"):
        ReasoningGymSource(("gsm_symbolic",), exclude_templates=(32,)).problems(0, 4)  # a template it skips
    with pytest.raises(ValueError, match="every template"):
        ReasoningGymSource(("gsm_symbolic",), exclude_templates=gsm_templates()).problems(0, 4)
    with pytest.raises(ValueError, match="holds no template out"):
        ReasoningGymSource(("gsm_symbolic",)).heldout_template_problems(0, 4)


def test_generator_options_reach_the_generator():
    source = ReasoningGymSource(("lcm",), options=(("max_value", 10),))
    assert source.describe() == {"kind": "reasoning_gym", "generators": ["lcm"], "options": {"max_value": 10}}
    assert all(int(problem.answer) <= 90 for problem in source.problems(seed=0, count=50))
    with pytest.raises(ValueError, match="seed"):
        ReasoningGymSource(("lcm",), options=(("seed", 1),))
