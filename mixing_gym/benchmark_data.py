"""The held-out benchmark items ``prepare`` writes: language-modelling passages and multiple-choice items.

Every builder takes held-out material only (documents split off by hash, problems generated from other
seeds) and returns the rows of one task's JSONL file, read by the lm-eval tasks in ``mixing_gym/tasks``:
``{"text"}`` passages for bits-per-byte, ``{"context", "choices", "gold"}`` items for multiple choice.
"""

from __future__ import annotations

import numpy as np

from mixing_gym.sources import Problem, load_humaneval

CHOICES_PER_ITEM = 4


def _passages(text: str, passage_chars: int, max_chars: int) -> list[str]:
    """Cut ``text`` into passages of about ``passage_chars`` characters, ending on whitespace."""
    passages, start = [], 0
    while start < len(text) and sum(map(len, passages)) < max_chars:
        end = min(start + passage_chars, len(text))
        if end < len(text):
            space = text.rfind(" ", start + passage_chars // 2, end)
            end = space if space > start else end
        passage = text[start:end].strip()
        if passage:
            passages.append(passage)
        start = end
    return passages


def token_passages(text: str, tokenizer, max_tokens: int, max_chars: int) -> list[str]:
    """Cut ``text`` into passages of at most ``max_tokens`` tokens, about ``max_chars`` characters in all.

    Each passage ends on the last whitespace before its token limit, so re-tokenising it alone gives
    no more tokens than the limit (a margin of a few tokens below the context absorbs edge effects).
    """
    offsets = tokenizer(text[: max_chars * 2], add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    passages, first, total = [], 0, 0
    while first < len(offsets) and total < max_chars:
        last = min(first + max_tokens, len(offsets)) - 1
        start, end = offsets[first][0], offsets[last][1]
        if last < len(offsets) - 1:
            space = text.rfind(" ", start + (end - start) // 2, end)
            end = space if space > start else end
        passage = text[start:end].strip()
        if passage:
            passages.append(passage)
            total += len(passage)
        while first < len(offsets) and offsets[first][0] < end:
            first += 1
    return passages


def continuation_items(documents: list[str], count: int, rng: np.random.Generator) -> list[dict]:
    """Multiple-choice cloze items: a passage's context, its true continuation and three from elsewhere."""
    snippets = [p for p in _passages("\n\n".join(documents), 320, 320 * (count + CHOICES_PER_ITEM) * 2)
                if len(p) > 200]
    if len(snippets) < CHOICES_PER_ITEM:
        return []  # too little held-out text in this domain; the other domains of the field supply the items
    items = []
    for index, snippet in enumerate(snippets[:count]):
        cut = snippet.rfind(" ", 0, 200)
        context, gold = snippet[:cut], snippet[cut:cut + 60]
        others = [s for j, s in enumerate(snippets) if j != index]
        picks = rng.choice(len(others), size=CHOICES_PER_ITEM - 1, replace=False)
        distractors = []
        for pick in picks:
            other = others[pick]
            at = other.rfind(" ", 0, 200)
            distractors.append(other[at:at + 60])
        items.append(_mc_item(context, gold, distractors, rng))
    return items


def problem_items(problems: list[Problem], rng: np.random.Generator) -> list[dict]:
    """Multiple-choice items: a problem, its answer and three answers of other problems of the domain."""
    answers = sorted({p.answer for p in problems})
    items = []
    for problem in problems:
        wrong = [a for a in answers if a != problem.answer]
        if len(wrong) < CHOICES_PER_ITEM - 1:
            continue
        distractors = [wrong[i] for i in rng.choice(len(wrong), size=CHOICES_PER_ITEM - 1, replace=False)]
        items.append(_mc_item(problem.context, problem.answer, distractors, rng))
    return items


def humaneval_items(count: int, rng: np.random.Generator, max_solution_chars: int = 160) -> list[dict]:
    """HumanEval as multiple choice: each prompt with its canonical solution and three other solutions.

    Only problems whose solution has at most ``max_solution_chars`` characters (89 of 164) are used:
    lm-eval needs every choice to fit the proxy's context, which is 128 tokens for ``micro``.
    """
    problems = [p for p in load_humaneval() if len(p["canonical_solution"]) <= max_solution_chars]
    solutions = [p["canonical_solution"] for p in problems]
    items = []
    for index in rng.permutation(len(problems))[:count]:
        others = [s for j, s in enumerate(solutions) if j != index]
        distractors = [others[i] for i in rng.choice(len(others), size=CHOICES_PER_ITEM - 1, replace=False)]
        items.append(_mc_item(problems[index]["prompt"], solutions[index], distractors, rng))
    return items


def _mc_item(context: str, gold: str, distractors: list[str], rng: np.random.Generator) -> dict:
    choices = [gold, *distractors]
    order = rng.permutation(len(choices))
    return {"context": context, "choices": [choices[i] for i in order], "gold": int(np.argmax(order == 0))}
