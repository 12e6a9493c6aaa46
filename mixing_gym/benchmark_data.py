"""The held-out benchmark items ``prepare`` writes: language-modelling passages and multiple-choice items.

Every builder takes held-out material only (documents split off by hash, problems generated from other
seeds) and returns the rows of one task's JSONL file, read by the lm-eval tasks in ``mixing_gym/tasks``:
``{"text"}`` passages for bits-per-byte, ``{"context", "choices", "gold"}`` items for multiple choice.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from mixing_gym.sources import (
    DOCUMENTED_DOCSTRING_CHARS,
    CorpusSource,
    DialogueSource,
    LicenseSource,
    NewsSource,
    Problem,
    ProblemSource,
    ReasoningGymSource,
    StdlibCodeSource,
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
        train: the other documents of a corpus source, which its domains train on: a task drops the items
            that a train document holds a copy of (files that repeat a function or a test of another).
        count: items to build.
        rng: the benchmark construction's random generator.
        seed: the data config's seed; generated problems use seeds no domain uses.
        problem_sources: the problem sources of the space's domains (a word-problem task reads the GSM
            templates its domain leaves out).
    """

    heldout: Callable[[CorpusSource], list[str]]
    train: Callable[[CorpusSource], list[str]]
    count: int
    rng: np.random.Generator
    seed: int
    problem_sources: tuple[ProblemSource, ...] = ()


@dataclass(frozen=True)
class TaskBenchmark:
    """A task benchmark a domain space may name in its ``benchmarks``.

    Args:
        subject: the target field it measures (``"math"``, ``"code"``), or ``None`` for general text: in a space
            whose target field is its subject it is a target-field benchmark, in any other a source-field one
            (:meth:`field_in`), so that code tasks measure what a math space's code source field keeps.
        description: what it asks, for the docs and ``mixing-gym tasks``.
        build: the items, ``[{"prompt", "answer"}]``.
        version: raised whenever ``build`` changes its items, so that caches prepared before are rebuilt.
        draws_on: the domains it draws on, by name prefix: those a practitioner who read its description would
            train for it (``agents.task_aware`` writes a mixture from them). Documentation only: no item and no
            cache key reads it, so changing it rebuilds nothing.
    """

    subject: str | None
    description: str
    build: Callable[[TaskInputs], list[dict]]
    version: int = 1
    draws_on: tuple[str, ...] = ()

    def field_in(self, target_field: str) -> str:
        """``"target"`` in a space whose target field is this benchmark's subject, ``"source"`` in any other.

        Args:
            target_field: the space's target field.
        """
        return "target" if self.subject == target_field else "source"


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


# Code tasks: a piece of code cut out of a held-out file (or a HumanEval problem) and what follows it. Training
# domains hold whole files; a task holds one function or one test, after an instruction, and its answer is the
# code that comes next.

#: The longest answer of a code task, in characters: the answer and some of its prompt must fit the context
#: of ``micro`` (128 tokens); ``prepare`` drops answers over ``eval_passage_tokens`` tokens besides.
CODE_ANSWER_CHARS = 240
#: The longest code before the answer, in characters (lm-eval cuts a longer prompt from the left).
CODE_CONTEXT_CHARS = 600


def _code_item(instruction: str, context: str, answer: str) -> dict:
    """A code task's item: ``instruction``, a blank line and ``context`` (whole lines) as the prompt, the code
    ``answer`` as the gold answer; the answer's indentation ends the prompt, so that the answer starts with
    code and no bits per byte go to leading spaces.

    Args:
        instruction: what the task asks, one line.
        context: the code before the answer, ending with a line break.
        answer: the code that follows it.
    """
    body = answer.strip("\n").rstrip()
    code = body.lstrip(" ")
    return {"prompt": f"{instruction}\n\n{context}{body[: len(body) - len(code)]}", "answer": code}


def _functions(source: str) -> Iterator[tuple[ast.FunctionDef | ast.AsyncFunctionDef, list[str]]]:
    """Every function (methods and nested ones included) of a Python file, in the order of ``ast.walk``, with
    its source lines from its ``def`` on, dedented; none for a file that does not parse.

    Args:
        source: the file's text.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):  # templates and files of other Python versions
        return
    lines = source.splitlines()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno is not None:
            yield node, textwrap.dedent("\n".join(lines[node.lineno - 1:node.end_lineno])).split("\n")


def _pick(items: list[dict], inputs: TaskInputs) -> list[dict]:
    """``inputs.count`` of ``items``, drawn with the benchmark construction's generator."""
    return [items[i] for i in inputs.rng.permutation(len(items))[: inputs.count]]


def normalized_code(text: str) -> str:
    """``text`` with every run of whitespace one space: code compared whatever its indentation and line breaks."""
    return " ".join(text.split())


def _unseen_items(instruction: str, pieces: list[tuple[str, str]], train: list[str],
                  inputs: TaskInputs) -> list[dict]:
    """``inputs.count`` items of ``pieces`` drawn as :func:`_pick` draws them, leaving out the pieces that a
    ``train`` document holds, whitespace aside: the hash split keeps files apart, not the functions and tests
    that one file copies from another.

    Args:
        instruction: the items' instruction (:func:`_code_item`).
        pieces: code cut out of held-out files, a context and its answer each.
        train: the documents the corpus's domains train on.
        inputs: the count and the generator.
    """
    seen = normalized_code("\x00".join(train))
    items = []
    for index in inputs.rng.permutation(len(pieces)):  # searched in draw order: a few searches, not one per piece
        if len(items) == inputs.count:
            break
        context, answer = pieces[index]
        if normalized_code(context + answer) not in seen:
            items.append(_code_item(instruction, context, answer))
    return items


def humaneval_solution_items(inputs: TaskInputs) -> list[dict]:
    """HumanEval's problems (a signature and a docstring with examples), completed by their canonical solutions;
    no domain holds HumanEval."""
    items = []
    for problem in load_humaneval():
        if len(problem["canonical_solution"].strip()) <= CODE_ANSWER_CHARS:
            items.append(_code_item("Complete the Python function so that it does what its docstring says.",
                                    problem["prompt"], problem["canonical_solution"]))
    return _pick(items, inputs)


def function_body_items(inputs: TaskInputs) -> list[dict]:
    """Functions of held-out standard-library modules: the signature and a one-line docstring, then the body.

    Only docstrings shorter than :data:`~mixing_gym.sources.DOCUMENTED_DOCSTRING_CHARS` are taken: the
    documentation domain holds the longer ones, of held-out modules too.
    """
    source, pieces = StdlibCodeSource(), []
    for document in inputs.heldout(source):
        for node, lines in _functions(document):
            docstring = ast.get_docstring(node)
            if docstring is None or len(docstring) >= DOCUMENTED_DOCSTRING_CHARS or len(node.body) < 2:
                continue
            cut = node.body[0].end_lineno - node.lineno + 1  # the lines up to the docstring's end
            context, body = "\n".join(lines[:cut]) + "\n", "\n".join(lines[cut:])
            if 20 <= len(body.strip()) <= CODE_ANSWER_CHARS and len(context) <= CODE_CONTEXT_CHARS:
                pieces.append((context, body))
    return _unseen_items("Complete the standard-library function from its signature and docstring.", pieces,
                         inputs.train(source), inputs)


def _is_assertion(statement: ast.stmt) -> bool:
    """An ``assert`` statement or a call of a ``self.assert...`` method."""
    if isinstance(statement, ast.Assert):
        return True
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)
            and isinstance(statement.value.func, ast.Attribute) and statement.value.func.attr.startswith("assert"))


def assertion_items(inputs: TaskInputs) -> list[dict]:
    """Tests of held-out standard-library test modules: a test method up to its first assertion, and that
    assertion (one per test; a test that asserts before it sets anything up is left out)."""
    source, pieces = StdlibCodeSource(tests=True), []
    for document in inputs.heldout(source):
        for node, lines in _functions(document):
            if not node.name.startswith("test"):
                continue
            statements = node.body[1:] if ast.get_docstring(node) is not None else node.body
            first = next((index for index, statement in enumerate(statements) if _is_assertion(statement)), None)
            if not first:  # no assertion, or nothing before it
                continue
            assertion = statements[first]
            start, end = assertion.lineno - node.lineno, assertion.end_lineno - node.lineno + 1
            context, answer = "\n".join(lines[:start]) + "\n", "\n".join(lines[start:end])
            if len(answer.strip()) <= CODE_ANSWER_CHARS // 2 and len(context) <= CODE_CONTEXT_CHARS:
                pieces.append((context, answer))
    return _unseen_items("Complete the standard-library unit test with the assertion it makes next.", pieces,
                         inputs.train(source), inputs)


#: The task benchmarks a domain space can name, by name (the lm-eval task is ``mg_task_<name>``). ``decimals`` is a
#: family no domain holds: it draws on basic arithmetic, the nearest one. HumanEval's functions are general Python,
#: as the standard library's modules are.
TASK_BENCHMARKS: dict[str, TaskBenchmark] = {
    "passages": TaskBenchmark(None, "held-out encyclopedia or news passage -> its continuation", passage_items,
                              version=2, draws_on=("wikipedia", "news")),
    "documentation": TaskBenchmark(None, "held-out Python documentation topic -> its explanation",
                                   documentation_items, draws_on=("stdlib_docs",)),
    "dialogue": TaskBenchmark(None, "a held-out conversation's first turn -> the reply", dialogue_items,
                              draws_on=("dialogue",)),
    "licences": TaskBenchmark(None, "a held-out licence clause -> its completion", licence_items, version=2,
                              draws_on=("licenses",)),
    "word_problems": TaskBenchmark("math", "GSM word problem of a held-out template -> worked solution and answer",
                                   word_problem_items, version=2, draws_on=("math_gsm_symbolic",)),
    "equations": TaskBenchmark("math", "linear equation, after a solved one -> its worked solution",
                               equation_items, version=2, draws_on=("math_simple_equations",)),
    "decimals": TaskBenchmark("math", "decimal arithmetic (no domain holds it), after a solved one -> the "
                              "result to three places", decimal_items, version=2, draws_on=("math_basic_arithmetic",)),
    "humaneval_solutions": TaskBenchmark("code", "HumanEval problem (signature, docstring, examples) -> its "
                                         "canonical solution", humaneval_solution_items, draws_on=("stdlib_code",)),
    "function_bodies": TaskBenchmark("code", "a held-out standard-library function's signature and one-line "
                                     "docstring -> its body", function_body_items, draws_on=("stdlib_code",)),
    "assertions": TaskBenchmark("code", "a held-out standard-library test up to its first assertion -> that "
                                "assertion", assertion_items, draws_on=("stdlib_tests",)),
}
#: How a layout names a task benchmark of :data:`TASK_BENCHMARKS` (its lm-eval task).
TASK_BENCHMARK_PREFIX = "mg_task_"


def task_benchmark_name(benchmark: str) -> str | None:
    """The :data:`TASK_BENCHMARKS` name of a layout's benchmark, or ``None`` if it is not one of them.

    Args:
        benchmark: a benchmark's name in a layout (``mg_task_<name>`` for a task benchmark).
    """
    name = benchmark.removeprefix(TASK_BENCHMARK_PREFIX)
    return name if benchmark.startswith(TASK_BENCHMARK_PREFIX) and name in TASK_BENCHMARKS else None
