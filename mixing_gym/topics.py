"""Topical domains of a corpus: its documents clustered by TF-IDF and k-means, one domain per cluster.

DCLM's topic domains (as Olmix uses them) and CLIMB's clusters are made this way: a web corpus has no
labels that say what each document is about, so its documents are embedded and clustered, and each
cluster becomes a domain that a mixture can weight. Here the embedding is TF-IDF (the corpora are small
and no embedding model is on the machine) and the clustering scikit-learn's k-means, seeded, so the
same corpus always splits the same way.

A :class:`TopicSource` is one cluster of a base :class:`~mixing_gym.sources.CorpusSource`. All topics of
a base share one clustering, computed once per process; :func:`topic_terms` and :func:`topic_name` say
what a cluster is about, for documentation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from mixing_gym.sources import CorpusSource

#: Part of every topic's ``describe()``: bump it whenever the clustering below changes, so that prepared
#: caches of the old clusters are not taken for the new ones.
CLUSTERING_VERSION = 1
#: Characters of each document's head that are vectorized: enough to say what a document is about,
#: and it keeps the long generated modules of the standard library (Unicode tables) from dominating
#: the vectorizer's time.
VECTORIZED_CHARS = 20_000
#: The vocabulary: tokens of two or more word characters in at least 2 documents and at most half of them
#: (the words of most documents, licence headers, ``self``, ``return``, say nothing about a topic), English
#: stop words left out, at most this many terms by frequency.
MAX_TERMS = 20_000
#: Restarts of k-means from different seeded initialisations; the best (lowest inertia) is kept.
KMEANS_RESTARTS = 10
#: Top terms recorded per topic.
TOP_TERMS = 10


@dataclass(frozen=True)
class Clustering:
    """A corpus's documents and the topic of each.

    Args:
        documents: the base corpus's documents, in its order.
        labels: the topic of each document; topics are numbered in the order of their first document.
        terms: each topic's top terms, by weight in the mean TF-IDF vector of its documents.
    """

    documents: tuple[str, ...]
    labels: tuple[int, ...]
    terms: tuple[tuple[str, ...], ...]


#: Clusterings computed in this process, by the base's ``describe()`` JSON, the number of topics and the seed.
_CLUSTERINGS: dict[tuple[str, int, int], Clustering] = {}


def cluster_corpus(base: CorpusSource, topics: int, seed: int = 0) -> Clustering:
    """The clustering of ``base`` into ``topics`` topics; computed once per process and then reused.

    Args:
        base: the corpus.
        topics: the number of clusters.
        seed: k-means' random state.
    """
    key = (json.dumps(base.describe(), sort_keys=True), topics, seed)
    if key not in _CLUSTERINGS:
        _CLUSTERINGS[key] = _cluster(base.documents(), topics, seed, key[0])
    return _CLUSTERINGS[key]


def _cluster(documents: list[str], topics: int, seed: int, name: str) -> Clustering:
    """Cluster ``documents`` by TF-IDF and k-means.

    Args:
        documents: the corpus.
        topics: the number of clusters.
        seed: k-means' random state.
        name: the corpus, for error messages.
    """
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    if len(documents) < max(topics, 2):
        raise ValueError(f"Corpus {name} has {len(documents)} documents, too few to cluster into {topics} topics.")
    vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=2, max_df=0.5, stop_words="english",
                                 max_features=MAX_TERMS, dtype=np.float32)
    try:
        matrix = vectorizer.fit_transform([document[:VECTORIZED_CHARS] for document in documents])
    except ValueError as error:  # no term is in 2 documents and at most half of them
        raise ValueError(f"Corpus {name} has no terms to cluster its documents by: {error}") from error
    raw = KMeans(n_clusters=topics, n_init=KMEANS_RESTARTS, random_state=seed).fit_predict(matrix)
    # k-means numbers its clusters arbitrarily; numbering them by their first document keeps a topic's
    # index tied to its content.
    order: dict[int, int] = {}
    for label in raw:
        order.setdefault(int(label), len(order))
    if len(order) < topics:  # duplicates: fewer distinct documents than topics
        raise ValueError(f"Corpus {name} splits into only {len(order)} non-empty clusters, not {topics}; "
                         "ask for fewer topics.")
    labels = np.array([order[int(label)] for label in raw])
    vocabulary = vectorizer.get_feature_names_out()
    terms = []
    for topic in range(topics):
        centroid = np.asarray(matrix[labels == topic].mean(axis=0)).ravel()
        # A stable sort breaks ties by vocabulary (alphabetical) order, so the terms are deterministic too.
        top = np.argsort(-centroid, kind="stable")[:TOP_TERMS]
        terms.append(tuple(str(vocabulary[index]) for index in top))
    return Clustering(tuple(documents), tuple(int(label) for label in labels), tuple(terms))


@dataclass(frozen=True)
class TopicSource(CorpusSource):
    """The documents of one topic (cluster) of a corpus, in the corpus's order.

    Args:
        base: the corpus that is clustered.
        topics: the number of topics it is clustered into.
        topic: which of them, ``0 .. topics - 1``; topics are numbered in the order of their first document.
        seed: k-means' random state.
    """

    base: CorpusSource
    topics: int
    topic: int
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.base, CorpusSource):
            raise TypeError(f"TopicSource clusters a CorpusSource; got {type(self.base).__name__}.")
        if self.topics < 1 or not 0 <= self.topic < self.topics:
            raise ValueError(f"TopicSource needs topics >= 1 and 0 <= topic < topics; got topic {self.topic} "
                             f"of {self.topics}.")

    def describe(self) -> dict:
        return {"kind": "topic", "base": self.base.describe(), "topics": self.topics, "topic": self.topic,
                "seed": self.seed, "version": CLUSTERING_VERSION}

    def documents(self) -> list[str]:
        clustering = cluster_corpus(self.base, self.topics, self.seed)
        return [document for document, label in zip(clustering.documents, clustering.labels) if label == self.topic]


def topic_terms(source: TopicSource, count: int = 5) -> tuple[str, ...]:
    """The top TF-IDF terms of a topic, most characteristic first.

    Args:
        source: the topic.
        count: how many terms (at most ``TOP_TERMS``).
    """
    return cluster_corpus(source.base, source.topics, source.seed).terms[source.topic][:count]


def topic_name(source: TopicSource, terms: int = 3) -> str:
    """A readable name of a topic from its top terms, such as ``"film/music/book"``.

    Args:
        source: the topic.
        terms: how many terms the name joins.
    """
    return "/".join(topic_terms(source, terms))
