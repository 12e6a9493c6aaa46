"""How close proxy training and scoring come to the machine's limit, and what one env step costs.

Prints, measured in this run (the machine is shared and absolute figures swing by half between runs,
so read the ratios, which are measured side by side):

1. the matmul peak in fp32 and bf16, at 2048x2048 and at the shapes of each preset's largest products;
2. training tokens/s and model FLOP/s (6 x parameters x tokens) of each preset through mixing-gym's
   trainer (bf16 autocast, foreach AdamW; eager and ``torch.compile``), the ratio to the bf16 2048x2048
   peak (MFU), and the same model on the same batches trained by a plain ``transformers.Trainer`` loop
   written the way a user would (its defaults: fp32), with the speed-up over it;
3. scoring tokens/s through lm-eval, and ``--env`` steps of ``--step-preset`` split into sampling,
   training, scoring and overhead, with the peak memory of the process that ran them (one worker);
4. the goals of the ``small`` preset (60% MFU, 3x the plain Trainer, scoring + overhead at most 15% of a
   v0 step and 20% of a v1 step, which scores 30 domains and 7 tasks; one worker under 1.5 GB), each with
   the measured value and its ratio to the goal.

    python benchmarks/performance.py --presets micro small paper-50m --train-steps 8 --env-steps 4
    python benchmarks/performance.py --presets small --env DataMixing-v0     # v0's step
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

TRAINER_STEPS_SKIPPED = 2  # first optimizer steps: allocations, lazy imports, compilation
#: The most of a small step that scoring plus overhead may take, per env.
SCORING_SHARE_GOALS = {"DataMixing-v0": 0.15, "DataMixing-v1": 0.20}
SMALL_BATCH_TOKENS = 16 * 256
RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results"


def matmul_flops(m: int, k: int, n: int, dtype: torch.dtype, seconds: float = 1.0) -> float:
    """FLOP/s of repeated ``(m x k) @ (k x n)`` products."""
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * m * k * n * count / (time.perf_counter() - start)


def preset_shapes(preset) -> dict[str, tuple[int, int, int]]:
    """The largest products of one training step: the MLP projection and the output layer."""
    rows = preset.batch_size * preset.seq_len
    return {f"{preset.name} mlp": (rows, preset.hidden_size, preset.intermediate_size),
            f"{preset.name} lm head": (rows, preset.hidden_size, 4096)}


@dataclass
class TrainSpeed:
    tokens_per_second: float
    final_loss: float


def time_mixing_gym(model, batches: list[torch.Tensor], precision: str, compile: bool) -> TrainSpeed:
    """Tokens/s of :class:`mixing_gym.trainer.ContinualTrainer` over ``batches`` (the first ones untimed)."""
    from mixing_gym.sampler import MixtureBatches
    from mixing_gym.trainer import ContinualTrainer, compile_for_training

    forward_model = compile_for_training(model) if compile else model
    tokens_per_batch = batches[0].shape[0] * (batches[0].shape[1] - 1)
    trainer = ContinualTrainer(forward_model, tokens_per_batch * len(batches), tokens_per_batch, 1e-3,
                               precision=precision)
    warmup, timed = batches[:TRAINER_STEPS_SKIPPED], batches[TRAINER_STEPS_SKIPPED:]
    first = trainer.train(MixtureBatches(warmup, np.array([tokens_per_batch * len(warmup)])))
    report = trainer.train(MixtureBatches(timed, np.array([tokens_per_batch * len(timed)])))
    mean_loss = (first.loss * len(warmup) + report.loss * len(timed)) / len(batches)
    return TrainSpeed(report.tokens_per_second, mean_loss)


def time_hf_trainer(model, batches: list[torch.Tensor]) -> TrainSpeed:
    """Tokens/s of a plain ``transformers.Trainer`` on the same batches, with its default settings."""
    from datasets import Dataset
    from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments, default_data_collator

    rows = torch.cat(batches)
    dataset = Dataset.from_dict({"input_ids": rows.tolist(), "labels": rows.tolist()})
    step_ends: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            step_ends.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as output_dir:
        args = TrainingArguments(output_dir=output_dir, per_device_train_batch_size=batches[0].shape[0],
                                 max_steps=len(batches), learning_rate=1e-3, logging_strategy="no",
                                 save_strategy="no", report_to=[], disable_tqdm=True, use_cpu=True, seed=0)
        trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=default_data_collator,
                          callbacks=[Clock()])
        trainer.remove_callback(PrinterCallback)  # it prints the final metrics dict, which the table replaces
        output = trainer.train()
    tokens = batches[0].shape[0] * (batches[0].shape[1] - 1) * (len(step_ends) - TRAINER_STEPS_SKIPPED)
    seconds = step_ends[-1] - step_ends[TRAINER_STEPS_SKIPPED - 1]
    return TrainSpeed(tokens / seconds, output.training_loss)


def training_table(preset_names: list[str], steps: int, bf16_peak: float,
                   cache_dir: str | None) -> dict[str, dict[str, float]]:
    """Prints the training table; returns each preset's best MFU and best speed-up over the plain Trainer."""
    from mixing_gym.models import build_model, count_parameters, get_preset
    from mixing_gym.prepare import DataConfig, prepare_data
    from mixing_gym.sampler import MixtureSampler
    from mixing_gym.trainer import resolve_precision

    data = prepare_data("math", DataConfig(), cache_dir)
    precision = resolve_precision("auto", torch.device("cpu"))
    print(f"\n## Training speed ({precision} autocast where native; MFU = model FLOP/s / bf16 2048x2048 peak)\n")
    print("| preset | params | loop | tokens/s | model GFLOP/s | MFU | x plain Trainer | mean train loss |")
    print("|---|---|---|---|---|---|---|---|")
    best: dict[str, dict[str, float]] = {}
    for name in preset_names:
        preset = get_preset(name)
        sampler = MixtureSampler(data, preset.seq_len, preset.batch_size)
        # the same number of timed tokens for every preset (at least 3 optimizer steps)
        timed_steps = max(3, round(steps * SMALL_BATCH_TOKENS / (preset.batch_size * preset.seq_len)))
        tokens = (timed_steps + TRAINER_STEPS_SKIPPED) * preset.batch_size * preset.seq_len
        batches = list(sampler.sample(data.space.field_mixture(0.5), tokens, np.random.default_rng(0)))
        runs = {}
        for loop in ("transformers.Trainer (fp32)", f"mixing-gym {precision}", f"mixing-gym {precision} compiled"):
            model = build_model(preset, data.tokenizer, seed=0)
            if loop.startswith("transformers"):
                runs[loop] = time_hf_trainer(model, batches)
            else:
                runs[loop] = time_mixing_gym(model, batches, precision, compile=loop.endswith("compiled"))
        parameters = count_parameters(model)
        plain = runs["transformers.Trainer (fp32)"].tokens_per_second
        best[name] = {"mfu": 0.0, "speedup": 0.0}
        for loop, speed in runs.items():
            flops = 6 * parameters * speed.tokens_per_second
            best[name] = {"mfu": max(best[name]["mfu"], flops / bf16_peak),
                          "speedup": max(best[name]["speedup"], speed.tokens_per_second / plain)}
            print(f"| {name} | {parameters / 1e6:.2f}M | {loop} | {speed.tokens_per_second:,.0f} | {flops / 1e9:.0f} "
                  f"| {flops / bf16_peak:.0%} | {speed.tokens_per_second / plain:.2f}x | {speed.final_loss:.3f} |",
                  flush=True)
    return best


def peak_memory_mb() -> float:
    """This process's peak resident memory (``VmHWM``; unlike ``ru_maxrss`` it does not carry over the
    parent's peak into a spawned child)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scored_text(row: dict) -> str:
    """What lm-eval scores of one benchmark row: a passage, a task's prompt and answer, or a choice item."""
    if "text" in row:
        return row["text"]
    if "prompt" in row:
        return row["prompt"] + row["answer"]
    return row["context"] + "".join(row["choices"])


def measure_steps(env_id: str, preset: str, steps: int, compile: bool, cache_dir: str | None, queue) -> None:
    """Run in a fresh process: env steps split by phase, scoring tokens/s, and the process's peak memory."""
    import gymnasium as gym

    import mixing_gym  # noqa: F401  (registers the envs)

    env = gym.make(env_id, preset=preset, cache_dir=cache_dir, compile=compile, torch_threads=1)
    unwrapped = env.unwrapped
    tokenizer = unwrapped.run.data.tokenizer
    scored_tokens = sum(len(tokenizer(scored_text(row), add_special_tokens=False)["input_ids"]) + 1
                        for task in unwrapped.run.evaluator.task_dict.values() for row in task.dataset["test"])
    env.reset(seed=0)
    env.step(env.action_space.sample())  # warm-up (and compilation)
    phases: dict[str, list[float]] = {"sample": [], "train": [], "score": [], "overhead": [], "step": []}
    for _ in range(steps):
        start = time.perf_counter()
        _, _, terminated, _, _ = env.step(env.action_space.sample())
        total = time.perf_counter() - start
        timings = unwrapped.last_step_timings
        for phase in ("sample", "train", "score"):
            phases[phase].append(timings[phase])
        phases["overhead"].append(total - timings["total"])
        phases["step"].append(total)
        if terminated:
            env.reset()
    result = {phase: float(np.mean(values)) for phase, values in phases.items()}
    result["scored_tokens"] = scored_tokens
    result["train_tokens"] = unwrapped.run.preset.tokens_per_step
    result["peak_rss_mb"] = peak_memory_mb()
    env.close()
    queue.put(result)


def step_table(env_id: str, preset: str, steps: int, cache_dir: str | None) -> dict[str, float]:
    """Prints the step table and writes its rows to ``docs/results/performance_step_<env>_<preset>.csv``;
    returns the smallest scoring share and the largest peak memory."""
    print(f"\n## A {env_id} step ({preset}, one torch thread, benchmarks='bpb'), one process per row\n")
    print("| compile | sample s | train s | score s | overhead s | step s | score+overhead | train tokens/s "
          "| scoring tokens/s | peak memory |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    context = multiprocessing.get_context("spawn")
    worst = {"share": 1.0, "memory_mb": 0.0}
    rows = []
    for compile in (False, True):
        queue = context.Queue()
        worker = context.Process(target=measure_steps, args=(env_id, preset, steps, compile, cache_dir, queue))
        worker.start()
        r = queue.get()
        worker.join()
        share = (r["score"] + r["overhead"]) / r["step"]
        print(f"| {compile} | {r['sample']:.3f} | {r['train']:.2f} | {r['score']:.2f} | {r['overhead']:.3f} "
              f"| {r['step']:.2f} | {share:.0%} | {r['train_tokens'] / r['train']:,.0f} "
              f"| {r['scored_tokens'] / r['score']:,.0f} | {r['peak_rss_mb']:,.0f} MB |", flush=True)
        worst = {"share": min(worst["share"], share), "memory_mb": max(worst["memory_mb"], r["peak_rss_mb"])}
        rows.append({"env": env_id, "preset": preset, "compile": compile, "steps": steps, **r, "score_share": share})
    pd.DataFrame(rows).to_csv(RESULTS / f"performance_step_{env_id}_{preset}.csv", index=False)
    return worst


def goals_table(training: dict[str, float], step: dict[str, float] | None, env_id: str) -> None:
    """The goals of the ``small`` preset, each with the measured value and how far from the goal it is."""
    rows = [("training MFU (best loop)", training["mfu"], 0.60, True, "{:.0%}"),
            ("tokens/s over plain transformers.Trainer (best loop)", training["speedup"], 3.0, True, "{:.2f}x")]
    if step is not None:
        rows += [(f"scoring + overhead share of a {env_id} step (best row)", step["share"],
                  SCORING_SHARE_GOALS[env_id], False, "{:.0%}"),
                 ("peak memory of one worker (MB)", step["memory_mb"], 1536, False, "{:,.0f}")]
    print("\n## Goals (small)\n")
    print("| goal | measured | target | met | measured / target |")
    print("|---|---|---|---|---|")
    for label, value, target, higher_is_better, style in rows:
        met = value >= target if higher_is_better else value <= target
        print(f"| {label} | {style.format(value)} | {style.format(target)} | {'yes' if met else 'no'} "
              f"| {value / target:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["micro", "small", "paper-50m"])
    parser.add_argument("--train-steps", type=int, default=8,
                        help="timed optimizer steps per loop at small's batch (16 x 256 tokens); other presets "
                             "train the same number of tokens, in at least 3 steps")
    parser.add_argument("--env-steps", type=int, default=4, help="timed env steps")
    parser.add_argument("--step-preset", default="small")
    parser.add_argument("--env", default="DataMixing-v1", choices=sorted(SCORING_SHARE_GOALS),
                        help="the env whose steps are timed (default: DataMixing-v1)")
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args()
    from mixing_gym.models import get_preset

    print(f"`python benchmarks/performance.py {' '.join(sys.argv[1:])}` ({torch.get_num_threads()} torch threads)\n")
    print("## Matmul peak (GFLOP/s)\n")
    print("| shape (m x k x n) | fp32 | bf16 |")
    print("|---|---|---|")
    shapes = {"2048x2048": (2048, 2048, 2048)}
    for name in args.presets:
        shapes.update(preset_shapes(get_preset(name)))
    peaks = {}
    for label, (m, k, n) in shapes.items():
        peaks[label] = {dtype: matmul_flops(m, k, n, dtype) for dtype in (torch.float32, torch.bfloat16)}
        print(f"| {label} ({m}x{k}x{n}) | {peaks[label][torch.float32] / 1e9:.0f} "
              f"| {peaks[label][torch.bfloat16] / 1e9:.0f} |", flush=True)
    training = training_table(args.presets, args.train_steps, peaks["2048x2048"][torch.bfloat16], args.cache_dir)
    step = step_table(args.env, args.step_preset, args.env_steps, args.cache_dir) if args.env_steps else None
    if "small" in training:
        goals_table(training["small"], step, args.env)


if __name__ == "__main__":
    main()
