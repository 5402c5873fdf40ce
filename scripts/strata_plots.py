#!/usr/bin/env python3
"""Plots of what Strata's programs write, as PNG files (matplotlib, headless):

    strata_plots.py curves METRICS [METRICS ...] --out curves.png
        training loss and every validation metric per epoch, from --metrics-out files (.csv or
        .jsonl; several runs side by side)
    strata_plots.py prefilter TABLE.csv --out prefilter.png
        the docking pre-filter table (docking_surrogate evaluate-prefilter --out): the share of
        the true top 0.1% and top 1% kept against the fraction sigma docked
    strata_plots.py predictions predictions.csv --out scatter.png
        predicted against measured response (drug_response predict, a file with responses);
        with a spread (--mc-passes, --ensemble) also the calibration: how often the response lies
        within mean +- z std against the z a Gaussian expects, and |error| against std
    strata_plots.py transfer TABLE.csv --out transfer.png
        the ensemble transfer table (transfer_drug_response --out): R2 (mean +- std over test
        folds) of SCV, ECV and ETL per partition scheme, one panel per network

Needs Debian's python3-matplotlib (and python3-numpy). Every function is usable from Python too:
`plot_curves(paths, out)`, `plot_prefilter(path, out)`, `plot_predictions(path, out)`,
`plot_transfer(path, out)`, `plot_learning_curve(path, out)`.
"""
import argparse
import csv
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")  # headless: no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def read_metrics(path):
    """Columns of a --metrics-out file (.csv or .jsonl) as {name: list of floats}."""
    rows = []
    with open(path, encoding="utf-8") as f:
        if path.endswith(".csv"):
            rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
        else:
            rows = [{k: float(v) for k, v in json.loads(line).items()} for line in f if line.strip()]
    if not rows:
        raise ValueError(f"{path}: no epochs recorded")
    return {k: [r.get(k, math.nan) for r in rows] for k in rows[0]}


def plot_curves(paths, out):
    """Training loss and each validation metric per epoch, one panel each, one line per file."""
    runs = [(p, read_metrics(p)) for p in paths]
    metrics = ["train_loss"] + sorted({k for _, m in runs for k in m if k.startswith("val_")})
    cols = min(3, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
    for ax, name in zip(axes.flat, metrics):
        for path, m in runs:
            if name in m:
                ax.plot(m["epoch"], m[name], marker="o", label=path.rsplit("/", 1)[-1])
        ax.set_title(name.replace("val_", "validation ").replace("_", " "))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    if len(runs) > 1:
        axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def plot_prefilter(path, out):
    """Recall of the true top 0.1% and top 1% against the docked fraction sigma (log scale)."""
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path}: an empty pre-filter table")
    sigma = np.array([float(r["sigma"]) for r in rows])
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for column, label in (("top_0.1%_retained", "true top 0.1%"), ("top_1%_retained", "true top 1%")):
        ax.plot(100 * sigma, [100 * float(r[column]) for r in rows], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("fraction docked, sigma (%)")
    ax.set_ylabel("kept by the surrogate (%)")
    ax.set_ylim(0, 105)
    ax.set_title("surrogate pre-filter")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def plot_predictions(path, out):
    """Predicted against measured response; with a spread, its calibration beside."""
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or "response" not in rows[0]:
        raise ValueError(f"{path}: needs a response column (predict a file with responses)")
    y = np.array([float(r["response"]) for r in rows])
    spread = "prediction_std" in rows[0]
    p = np.array([float(r["prediction_mean" if spread else "prediction"]) for r in rows])
    fig, axes = plt.subplots(1, 3 if spread else 1, figsize=(14 if spread else 5, 4.2), squeeze=False)
    ax = axes[0, 0]
    ax.scatter(y, p, s=4, alpha=0.4)
    low, high = min(y.min(), p.min()), max(y.max(), p.max())
    ax.plot([low, high], [low, high], color="black", lw=1)
    r2 = 1 - np.sum((p - y) ** 2) / max(np.sum((y - y.mean()) ** 2), 1e-300)
    ax.set_title(f"{len(y)} tuples, R2 {r2:.3f}")
    ax.set_xlabel("measured response")
    ax.set_ylabel("predicted" + (" (mean)" if spread else ""))
    if spread:
        std = np.array([float(r["prediction_std"]) for r in rows])
        error = np.abs(p - y)
        z = np.linspace(0, 3, 31)
        with np.errstate(divide="ignore", invalid="ignore"):
            covered = [np.mean(error <= zi * std) for zi in z]
        expected = [math.erf(zi / math.sqrt(2)) for zi in z]
        ax = axes[0, 1]
        ax.plot(expected, covered, marker=".", label="measured")
        ax.plot([0, 1], [0, 1], color="black", lw=1, label="calibrated")
        ax.set_xlabel("share within mean +- z std, Gaussian")
        ax.set_ylabel("share within mean +- z std, measured")
        ax.set_title("calibration")
        ax.legend()
        ax = axes[0, 2]
        ax.scatter(std, error, s=4, alpha=0.4)
        ax.set_xlabel("predicted std")
        ax.set_ylabel("|error|")
        ax.set_title("does the spread rank the errors?")
    for a in axes.flat:
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def plot_transfer(path, out, metric="r2"):
    """Bars of `metric` (mean +- std over test folds) per scheme and method, a panel per network."""
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or f"{metric}_mean" not in rows[0]:
        raise ValueError(f"{path}: not a transfer table (transfer_drug_response --out)")
    networks = list(dict.fromkeys(r["network"] for r in rows))
    schemes = list(dict.fromkeys(r["scheme"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, axes = plt.subplots(1, len(networks), figsize=(5 * len(networks), 3.8), squeeze=False, sharey=True)
    width = 0.8 / len(methods)
    for ax, network in zip(axes.flat, networks):
        for k, method in enumerate(methods):
            chosen = {r["scheme"]: r for r in rows if r["network"] == network and r["method"] == method}
            x = np.arange(len(schemes)) + (k - (len(methods) - 1) / 2) * width
            ax.bar(x, [float(chosen[s][f"{metric}_mean"]) for s in schemes], width,
                   yerr=[float(chosen[s][f"{metric}_std"]) for s in schemes], capsize=3, label=method)
        ax.set_xticks(np.arange(len(schemes)))
        ax.set_xticklabels(schemes)
        ax.set_title(network)
        ax.grid(alpha=0.3, axis="y")
    axes.flat[0].set_ylabel(f"{metric} on the target's test folds")
    axes.flat[0].legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def plot_learning_curve(path, out, fits=None):
    """Median test error over splits against training size (log-log) with the splits' range,
    the fitted power law and the extrapolation check, one colour per model."""
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"model", "split", "size", "metric", "score"} <= set(rows[0]):
        raise ValueError(f"{path}: not learning-curve scores (learning_curve --out)")
    if fits is None:
        beside = path[:-4] + "_fit.csv" if path.endswith(".csv") else path + "_fit.csv"
        fits = beside if os.path.exists(beside) else None
    fit_rows = {}
    if fits:
        with open(fits, encoding="utf-8") as f:
            fit_rows = {r["model"]: r for r in csv.DictReader(f)}
    metric = next(iter(fit_rows.values()))["metric"] if fit_rows else "mae"
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for k, model in enumerate(dict.fromkeys(r["model"] for r in rows)):
        colour = f"C{k}"
        by_size = {}
        for r in rows:
            if r["model"] == model and r["metric"] == metric:
                by_size.setdefault(int(r["size"]), []).append(float(r["score"]))
        if not by_size:
            raise ValueError(f"{path}: no {metric} scores of {model}")
        sizes = np.array(sorted(by_size))
        median = np.array([np.median(by_size[m]) for m in sizes])
        low = np.array([min(by_size[m]) for m in sizes])
        high = np.array([max(by_size[m]) for m in sizes])
        ax.errorbar(sizes, median, yerr=[median - low, high - median], fmt="o", color=colour, capsize=3,
                    label=f"{model} (median, range over splits)")
        fit = fit_rows.get(model)
        if fit and fit["converged"] == "1":
            a, b, g = float(fit["alpha"]), float(fit["beta"]), float(fit["gamma"])
            first = float(fit.get("fitted_from") or sizes[0])  # the sizes below were not fitted
            inside = np.geomspace(first, sizes[-1], 100)
            beyond = np.geomspace(sizes[-1], 2 * sizes[-1], 20)
            r2 = f", R2 {float(fit['r2']):.4f}" if fit.get("r2") else ""
            ax.plot(inside, a * inside ** b + g, "-", color=colour, label=f"{model} fit: beta {b:.3f}{r2}")
            ax.plot(beyond, a * beyond ** b + g, "--", color=colour)
            if fit.get("check_predicted"):
                ax.plot(float(fit["check_size"]), float(fit["check_predicted"]), "x", color=colour, markersize=9,
                        label=f"{model}: largest size predicted without it")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("training size")
    ax.set_ylabel(f"test {metric}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("kind", choices=["curves", "prefilter", "predictions", "transfer", "learning-curve"])
    parser.add_argument("inputs", nargs="+", help="the file(s) to plot")
    parser.add_argument("--out", required=True, help="the PNG to write")
    args = parser.parse_args(argv)
    try:
        if args.kind == "curves":
            plot_curves(args.inputs, args.out)
        elif len(args.inputs) != 1:
            parser.error(f"{args.kind} plots one file")
        elif args.kind == "prefilter":
            plot_prefilter(args.inputs[0], args.out)
        elif args.kind == "transfer":
            plot_transfer(args.inputs[0], args.out)
        elif args.kind == "learning-curve":
            plot_learning_curve(args.inputs[0], args.out)
        else:
            plot_predictions(args.inputs[0], args.out)
    except (OSError, ValueError, KeyError) as e:
        print(f"strata_plots: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
