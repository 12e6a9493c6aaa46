"""Turn a mixture (weights over K domains) and a token budget into packed training batches."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mixing_gym.layout import allocate
from mixing_gym.prepare import PreparedData


@dataclass
class MixtureBatches:
    """The batches for one stretch of training.

    Args:
        batches: ``(batch_size, seq_len + 1)`` int64 tensors; each row is one window of one domain's text.
        tokens_per_domain: training tokens drawn from each domain (inputs, not counting the shifted label).
    """

    batches: list[torch.Tensor]
    tokens_per_domain: np.ndarray

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter(self.batches)

    @property
    def num_tokens(self) -> int:
        return int(self.tokens_per_domain.sum())


class MixtureSampler:
    """Draws packed windows of ``seq_len + 1`` tokens from each domain's train shard.

    Every window comes from one domain (documents inside it are packed, separated by EOS), so the
    per-domain token counts equal the weights up to the rounding of ``tokens // seq_len`` windows.

    Args:
        data: the prepared data.
        seq_len: tokens per training sequence.
        batch_size: sequences per batch.
        domain_tokens: unique training tokens per domain, for the domains named (finite data: windows are
            drawn from the first that many tokens of the shard, so training past them repeats them).
    """

    def __init__(self, data: PreparedData, seq_len: int, batch_size: int,
                 domain_tokens: Mapping[str, int] | None = None):
        self.space = data.space
        self.seq_len = seq_len
        self.batch_size = batch_size
        limits = dict(domain_tokens or {})
        unknown = sorted(set(limits) - set(self.space.names))
        if unknown:
            raise KeyError(f"domain_tokens names domains {unknown} that the space {self.space.name!r} lacks.")
        self.shards = [data.train_tokens(name)[: limits.get(name)] for name in self.space.names]
        #: Unique training tokens of each domain, in domain order.
        self.unique_tokens = np.array([len(shard) for shard in self.shards])
        for name, shard in zip(self.space.names, self.shards):
            if len(shard) <= seq_len + 1:
                raise ValueError(f"Domain {name!r} has {len(shard)} train tokens, fewer than one sequence of "
                                 f"{seq_len + 1}; prepare more text (max_train_chars) or shorten seq_len.")
        self._offsets = np.arange(seq_len + 1)

    def sample(self, weights: Sequence[float] | np.ndarray, num_tokens: int,
               rng: np.random.Generator) -> MixtureBatches:
        """Batches holding ``num_tokens`` tokens (rounded down to whole sequences) mixed by ``weights``."""
        weights = self.space.mixture(weights)
        num_sequences = num_tokens // self.seq_len
        if num_sequences < 1:
            raise ValueError(f"A budget of {num_tokens} tokens is less than one sequence of {self.seq_len}.")
        counts = allocate(weights, num_sequences)
        domain_of_row = np.repeat(np.arange(len(counts)), counts)
        rng.shuffle(domain_of_row)
        rows = np.empty((num_sequences, self.seq_len + 1), dtype=np.int64)
        for domain, count in enumerate(counts):
            if count:
                shard = self.shards[domain]
                starts = rng.integers(0, len(shard) - self.seq_len - 1, size=count)
                rows[domain_of_row == domain] = shard[starts[:, None] + self._offsets]
        tensor = torch.from_numpy(rows)
        batches = list(torch.split(tensor, self.batch_size))
        return MixtureBatches(batches, counts * self.seq_len)
