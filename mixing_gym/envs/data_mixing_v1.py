"""``DataMixing-v1``: the paper's setting: task benchmarks, a many-domain space, finite target data."""

from __future__ import annotations

from typing import ClassVar

from mixing_gym.domains import DomainSpace, get_domain_space
from mixing_gym.envs.data_mixing import DataMixingEnv

#: The domain space of each target field in v1.
V1_SPACES = {"math": "math-v1", "code": "code-v1"}


class DataMixingV1Env(DataMixingEnv):
    """``DataMixing-v0``'s MDP with the feedback, domains and data of the paper's setting.

    ## Description

    On v0 every sensible policy ties: its feedback is each training domain's own held-out loss, and a
    concave objective of that kind peaks flat near a uniform split. v1 poses the problem the Data Mixing
    Agent paper (arXiv 2507.15640) poses:

    - **task benchmarks** give the feedback: lm-eval tasks built at prepare time from held-out material,
      each unlike every training domain in format and drawing on several domains (word problems of held-out
      GSM templates answered with a worked solution, equations, a problem family no domain holds; on the code
      field HumanEval's solutions, the bodies of held-out standard-library functions, the assertions of
      held-out tests; held-out article and news continuations, documentation topics, dialogue replies,
      licence clauses), scored as
      bits per byte of the gold answer given the prompt, the way OLMo's evaluation, DataDecide and Olmix
      score small models. The field aggregates and the reward come from them; each domain's held-out bits
      per byte stays in the observation, the agent's view of the model;
    - **a domain space of the paper's shape** (``math-v1``): topic clusters of the source corpora (as DCLM's
      topic domains and CLIMB's clusters are made) and separate problem families on the target side, some
      of which help the target tasks little, as real math corpora's subsets do. The code field
      (``target_field="code"``, ``code-v1``) has the same shape: the prose topics as the source field, and
      code corpora of uneven value (the standard library's modules in topics, its tests, two third-party
      libraries, reasoning-gym's generators, lm-eval's YAML configs) as the target field;
    - **finite target data**: the target field holds ``cpt_tokens / target_epochs`` unique training tokens
      (target-only training repeats them ``target_epochs`` = 4 times by default), while source data stays
      plentiful, as web data is; the observation reports each domain's epochs used.

    ## Action Space

    As ``DataMixing-v0``: ``Box(-1, 1, (K,), float32)`` logits, ``softmax(action / temperature)``, or
    ``Box(0, 1, (K,))`` weights with ``action_mode="weights"``.

    ## Observation Space

    A float32 ``Box`` of size 2K + B + 3, named by ``env.unwrapped.observation_names``:

    | index             | name                 | meaning                                                | range      |
    |-------------------|----------------------|--------------------------------------------------------|------------|
    | 0 .. K-1          | ``weight/<domain>``  | the mixture trained on in the last step                | [0, 1]     |
    | K .. K+B-1        | ``score/<task>``     | each benchmark's improvement over the base model       | [-1, 10]   |
    | K+B               | ``score/source``     | source aggregate: mean improvement of source tasks     | [-1, 10]   |
    | K+B+1             | ``score/target``     | target aggregate: mean improvement of target tasks     | [-1, 10]   |
    | K+B+2             | ``progress``         | share of the CPT token budget spent                    | [0, 1]     |
    | K+B+3 .. 2K+B+2   | ``epochs/<domain>``  | the domain's unique training tokens trained on, epochs | [0, 100]   |

    The B benchmarks are each domain's held-out bits per byte (``mg_bpb_<domain>``) and the task
    benchmarks (``mg_task_<name>``); ``env.unwrapped.layout.benchmarks`` says what each measures.

    ## Rewards

    As ``DataMixing-v0``: the change of ``J(s, t)`` (``"balanced"`` by default), here with ``s`` and ``t``
    the mean improvement of each field's task benchmarks (``aggregate="tasks"``).

    ## Starting State

    As ``DataMixing-v0``, with every domain at 0 epochs.

    ## Episode End

    After ``num_steps`` steps, as ``DataMixing-v0``.

    ## Arguments

    ```python
    gym.make("DataMixing-v1", preset="small", target_field="math", target_epochs=4.0, aggregate="tasks", ...)
    ```

    Every argument of ``DataMixing-v0``; these defaults differ: ``target_field`` selects the v1 space of
    the field (``"math"``: ``math-v1``, 30 domains and 7 tasks; ``"code"``: ``code-v1``, 25 domains and 6 tasks),
    ``aggregate="tasks"``, ``target_epochs=4.0``, ``observe_epochs=True``, ``eval_batch_size=16`` (scoring 30
    domains and 7 tasks stays a fifth of a ``small`` step).

    ## Version History

    - v1: task benchmarks as feedback, the ``math-v1`` space, finite target data with epochs observed.
      Later the code field, ``target_field="code"`` (the ``code-v1`` space and its code tasks); the math
      field's observations and rewards are unchanged.
      Before its first measured card the two arithmetic tasks gained a solved example in their prompts (the
      equations a worked solution) and ``math-v1`` its scoring budget (32 items per task, 500 characters
      per domain); caches prepared before are rebuilt (``TaskBenchmark.version``).
    - v0: per-domain held-out loss as feedback, 11 domains, plentiful data (``DataMixingEnv``).
    """

    env_id: ClassVar[str] = "DataMixing-v1"

    @staticmethod
    def space_of(target_field: str) -> DomainSpace:
        if target_field not in V1_SPACES:
            fields = ", ".join(f"{field!r} ({space})" for field, space in V1_SPACES.items())
            raise ValueError(f"Unknown target_field {target_field!r} for DataMixing-v1; its target fields are "
                             f"{fields}, or pass space=<a DomainSpace, a config dict or a YAML path>.")
        return get_domain_space(V1_SPACES[target_field])
