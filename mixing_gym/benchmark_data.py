"""The held-out benchmark items ``prepare`` writes: language-modelling passages and multiple-choice items.

Every builder takes held-out material only (documents split off by hash, problems generated from other
seeds) and returns the rows of one task's JSONL file, read by the lm-eval tasks in ``mixing_gym/tasks``:
``{"text"}`` passages for bits-per-byte, ``{"context", "choices", "gold"}`` items for multiple choice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mixing_gym.sources import (
    CorpusSource,
    DialogueSource,
    LicenseSource,
    NewsSource,
    Problem,
    ProblemSource,
    ReasoningGymSource,
    StdlibDocsSource,
    WikipediaSource,
    load_humaneval,
)

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


# --------------------------------------------------------------------------------------------
# Task benchmarks: a prompt and its gold answer, scored as bits per byte of the answer given the prompt.
# Each differs in format from every training domain and draws on held-out material of several domains.


@dataclass(frozen=True)
class TaskInputs:
    """What a task builder may read.

    Args:
        heldout: the held-out documents of a corpus source (the same hash split ``prepare`` uses for the
            domains, so no task item comes from a document any domain trains on).
        count: items to build.
        rng: the benchmark construction's random generator.
        seed: the data config's seed; generated problems use seeds no domain uses.
        problem_sources: the problem sources of the space's domains (a word-problem task reads the GSM
            templates its domain leaves out).
    """

    heldout: Callable[[CorpusSource], list[str]]
    count: int
    rng: np.random.Generator
    seed: int
    problem_sources: tuple[ProblemSource, ...] = ()


@dataclass(frozen=True)
class TaskBenchmark:
    """A task benchmark a domain space may name in its ``benchmarks``.

    Args:
        field: ``"source"`` or ``"target"``.
        description: what it asks, for the README and ``mixing-gym tasks``.
        build: the items, ``[{"prompt", "answer"}]``.
        version: raised whenever ``build`` changes its items, so that caches prepared before are rebuilt.
    """

    field: str
    description: str
    build: Callable[[TaskInputs], list[dict]]
    version: int = 1


def _cut(text: str, at: int) -> int:
    """The last whitespace at or before ``at`` (so neither part splits a word)."""
    space = text.rfind(" ", at // 2, at)
    return space if space > 0 else at


def _continuations(documents: list[str], inputs: TaskInputs, prompt: str, context_chars: int = 160,
                   answer_chars: int = 100) -> list[dict]:
    """``prompt`` + the start of a held-out document, and its next ``answer_chars`` characters as the answer."""
    usable = [" ".join(doc.split()) for doc in documents]
    usable = [doc for doc in usable if len(doc) >= context_chars + answer_chars]
    picks = inputs.rng.permutation(len(usable))[: inputs.count]
    items = []
    for index in picks:
        doc = usable[index]
        cut = _cut(doc, context_chars)
        end = _cut(doc, cut + answer_chars)
        items.append({"prompt": prompt + doc[:cut], "answer": doc[cut:end]})
    return items


def passage_items(inputs: TaskInputs) -> list[dict]:
    """Held-out encyclopedia articles and news stories, continued."""
    documents = inputs.heldout(WikipediaSource()) + inputs.heldout(NewsSource())
    return _continuations(documents, inputs, "Read the start of an article and continue it.\n\n")


def documentation_items(inputs: TaskInputs) -> list[dict]:
    """Held-out Python documentation: a topic's opening, then its explanation."""
    return _continuations(inputs.heldout(StdlibDocsSource()), inputs, "A question about Python's documentation.\n"
                          "Topic: ", context_chars=120, answer_chars=120)


def dialogue_items(inputs: TaskInputs) -> list[dict]:
    """A held-out conversation's first turn and its reply, as reported speech."""
    items = []
    for doc in inputs.heldout(DialogueSource()):
        lines = [line.split(": ", 1)[-1] for line in doc.splitlines()]
        if len(lines) >= 2 and len(lines[1]) <= 200:
            items.append({"prompt": f'One person says: "{lines[0]}"\nThe other replies: "', "answer": f'{lines[1]}"'})
    order = inputs.rng.permutation(len(items))[: inputs.count]
    return [items[i] for i in order]


def licence_items(inputs: TaskInputs) -> list[dict]:
    """Clauses of held-out licences, completed."""
    clauses = [part for doc in inputs.heldout(LicenseSource()) for part in doc.split("\n\n")]
    return _continuations(clauses, inputs, "Complete the licence clause.\n\n", context_chars=120, answer_chars=80)


def _generated(name: str, inputs: TaskInputs, offset: int, count: int) -> list[dict]:
    import reasoning_gym

    # Seeds from 77_777 on: the problem domains draw theirs from seed * 10_000 + a small chunk index.
    dataset = reasoning_gym.create_dataset(name, seed=77_777 + inputs.seed * 100 + offset, size=count)
    return [dataset[i] for i in range(len(dataset))]


def word_problem_items(inputs: TaskInputs) -> list[dict]:
    """GSM-style word problems of the templates the space's word-problem domain leaves out, answered by a
    worked solution (training formats them ``Question: ... Answer: ... #### n``; the task does not)."""
    holding_out = [source for source in inputs.problem_sources
                   if isinstance(source, ReasoningGymSource) and source.exclude_templates]
    if not holding_out:
        raise ValueError("The word_problems task needs a domain whose ReasoningGymSource leaves GSM templates out "
                         "(exclude_templates=...), so that its problems come from templates no domain trains on.")
    items = []
    for problem in holding_out[0].heldout_template_problems(77_777 + inputs.seed, inputs.count * 3):
        question, _, reasoning = problem.context.removeprefix("Question: ").partition("\nAnswer: ")
        reasoning = reasoning.removesuffix("#### ").strip()
        if reasoning and len(reasoning) <= 300:
            items.append({"prompt": f"Solve the word problem.\nProblem: {question.strip()}\nWorked solution:",
                          "answer": f" {reasoning}\nThe answer is {problem.answer}."})
    return items[: inputs.count]


def _few_shot(instruction: str, solved: list[tuple[str, str]], queries: list[tuple[str, str]]) -> list[dict]:
    """Items whose prompt is ``instruction``, the ``solved`` examples and one query; the answer is its solution.

    The examples fix the answer's format, so that a short answer's bits per byte measures what the model knows
    of the problem rather than whether it guesses the format (on short numeric answers, without examples, the
    seed-to-seed spread of the score is several times the differences between mixtures).
    """
    shots = "".join(f"{question}{answer}\n\n" for question, answer in solved)
    return [{"prompt": f"{instruction}\n\n{shots}{question}", "answer": answer} for question, answer in queries]


#: Solved examples in a few-shot task's prompt (one: each costs every item's prompt tokens at every step).
SHOTS = 1


def _worked_equation(equation: str, variable: str) -> str:
    """``a*x + b = c`` solved in worked steps: the constant moved across, then the division."""
    import sympy

    symbol = sympy.Symbol(variable)
    left, right = (sympy.expand(sympy.sympify(side)) for side in equation.split("="))
    coefficient, constant = left.coeff(symbol), left.subs(symbol, 0)
    total = right - constant
    steps = []
    if constant != 0:
        steps.append(f"{coefficient}*{variable} = {right} {'-' if constant > 0 else '+'} {abs(constant)} = {total}")
    steps.append(f"{variable} = {total}/{coefficient} = {total / coefficient}")
    return " " + "\n".join(steps)


def equation_items(inputs: TaskInputs) -> list[dict]:
    """Linear equations from seeds no domain uses, solved in worked steps (training states only the value)."""
    problems = [(f"Equation: {entry['metadata']['equation']}\nSolution:",
                 _worked_equation(entry["metadata"]["equation"], entry["metadata"]["variable"]))
                for entry in _generated("simple_equations", inputs, 1, inputs.count + SHOTS)]
    return _few_shot("Solve each equation for its unknown.", problems[:SHOTS], problems[SHOTS:])


def decimal_items(inputs: TaskInputs) -> list[dict]:
    """Decimal arithmetic, a problem family no target domain holds, answered to three decimal places."""
    problems = [(f"{entry['question'].strip().splitlines()[-1].removesuffix(' = ?')} =",
                 f" {float(entry['answer']):.3f}")
                for entry in _generated("decimal_arithmetic", inputs, 2, inputs.count + SHOTS)]
    return _few_shot("Compute each expression to three decimal places.", problems[:SHOTS], problems[SHOTS:])


#: The task benchmarks a domain space can name, by name (the lm-eval task is ``mg_task_<name>``).
TASK_BENCHMARKS: dict[str, TaskBenchmark] = {
    "passages": TaskBenchmark("source", "held-out encyclopedia or news passage -> its continuation", passage_items,
                              version=2),
    "documentation": TaskBenchmark("source", "held-out Python documentation topic -> its explanation",
                                   documentation_items),
    "dialogue": TaskBenchmark("source", "a held-out conversation's first turn -> the reply", dialogue_items),
    "licences": TaskBenchmark("source", "a held-out licence clause -> its completion", licence_items, version=2),
    "word_problems": TaskBenchmark("target", "GSM word problem of a held-out template -> worked solution and answer",
                                   word_problem_items, version=2),
    "equations": TaskBenchmark("target", "linear equation, after a solved one -> its worked solution",
                               equation_items, version=2),
    "decimals": TaskBenchmark("target", "decimal arithmetic (no domain holds it), after a solved one -> the "
                              "result to three places", decimal_items, version=2),
}
