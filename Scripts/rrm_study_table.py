#!/usr/bin/env python3
"""Prints the Markdown tables of docs/rrm-study.md from the outputs of Scripts/rrm_study.sh.

Usage: [STUDY=...] python3 Scripts/rrm_study_table.py OUT_DIR

One line per row, in the script's order: clean accuracy, APGD-CE and worst-case robust accuracy
(APGD-CE then APGD-T on what it left), the fraction of the teacher's worst case the student kept,
the training wall time, and (where the study has a `pgd-at` row) how many times longer that
baseline takes: for the paper setting from the side-by-side cost measurement
(docs/results/rrm-cost/, Scripts/rrm_cost.sh: rows that shared the machine have no valid wall
times), else from the rows' own wall times. Rows not yet evaluated are listed as pending; a row
with only a first look (`SAMPLES=1000`: NAME.first1000.eval.json) shows it, marked, and is
compared with its teacher's first look on the same images. A second table compares each
distilled student with its teacher (`rrmd agreement`). Files missing from OUT_DIR are read from
docs/results/<name of OUT_DIR>/, where `rrm_study.sh --publish` keeps finished rows. Set STUDY
as for Scripts/rrm_study.sh.
"""
import json
import os
import subprocess
import sys

# The first look's size: `SAMPLES=1000 bash Scripts/rrm_study.sh ...` (the paper studies' own is 10,000).
FIRST_LOOK = 1000


class Results:
    """A row's JSON summaries, from the working directory or from what git keeps."""

    def __init__(self, out, kept):
        self.places = [out, kept]

    def get(self, row, kind):
        for place in self.places:
            try:
                with open(os.path.join(place, f"{row}.{kind}.json")) as f:
                    return json.load(f)
            except (OSError, ValueError):
                continue
        return None


def measured_ratios(here):
    """PGD-AT's training time over each paper row's, from Scripts/rrm_cost.sh's measurements:
    the ×1.25 rows by their own names (free-at-lr05 costs what free-at costs), the ×1 rows as w1-*."""
    out = {}
    for width, prefix in (("1.25", ""), ("1", "w1-")):
        try:
            with open(os.path.join(here, "..", "docs", "results", "rrm-cost", f"width-{width}.json")) as f:
                rows = json.load(f)["rows"]
        except (OSError, ValueError, KeyError):
            continue
        for name, row in rows.items():
            out[prefix + name] = row["pgd_at_ratio"]
        if "free-at" in rows and not prefix:
            out["free-at-lr05"] = rows["free-at"]["pgd_at_ratio"]
        # A random start or another weight changes no step's cost: those rows cost what rrm costs.
        if "rrm" in rows and not prefix:
            for name in ("rrm-rand", "rrm-x005"):
                out.setdefault(name, rows["rrm"]["pgd_at_ratio"])
    return out


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "results/rrm-study"
    here = os.path.dirname(os.path.abspath(__file__))
    kept = os.path.join(here, "..", "docs", "results", os.path.basename(os.path.normpath(out)))
    results = Results(out, kept)
    listing = subprocess.run(["bash", os.path.join(here, "rrm_study.sh"), "--list"], check=True,
                             capture_output=True, text=True).stdout
    # NAME KIND TEACHER [ARGUMENTS]: a thead row has no arguments.
    rows = [(line.split(None, 3) + [""])[:4] for line in listing.splitlines() if line.strip()]
    teachers = {r[0]: r[2] for r in rows}
    evals = {r[0]: results.get(r[0], "eval") for r in rows}
    # Rows with only a first look: its numbers, marked, and its teacher's on the same images.
    first = {r[0]: results.get(r[0], f"first{FIRST_LOOK}.eval") for r in rows}
    looks = {n for n in evals if evals[n] is None and first[n] is not None}
    for n in looks:
        evals[n] = first[n]
    pgd = results.get("pgd-at", "train")
    pgd_seconds = pgd.get("seconds") if pgd else None
    measured = measured_ratios(here) if os.environ.get("STUDY", "").startswith("paper") else {}

    print("| row | kind | clean | APGD-CE | APGD-T on what it left | worst case | kept of teacher | training "
          "| PGD-AT's time over this |")
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|")
    for name, kind, _, _ in rows:
        e = evals[name]
        if e is None:
            print(f"| {name} | {kind} | pending | | | | | | |")
            continue
        label = f"{name} (first {FIRST_LOOK:,} test images)" if name in looks else name
        ce = next((a["robust_accuracy"] for a in e["attacks"] if a["name"] == "apgd-ce"), None)
        worst = e["worst_case"]["robust_accuracy"]
        kept_text = ""
        # A thead row's TEACHER column names the distilled row; the teacher is that row's.
        teacher = teachers.get(teachers[name]) if kind == "thead" else teachers[name]
        t = None
        if kind in ("distill", "thead"):
            t = first.get(teacher) if name in looks else evals.get(teacher)
            if name not in looks and teacher in looks:
                t = None  # a whole-test-set student against a teacher's first look: not comparable
        if t and t["worst_case"]["robust_accuracy"] > 0:
            kept_text = f"{100 * worst / t['worst_case']['robust_accuracy']:.0f}%"
        train = results.get(name, "train") or {}
        secs = f"{train['seconds']:.0f} s" if "seconds" in train else ""
        if name in measured:
            ratio = f"{measured[name]:.1f}x (measured)"
        else:
            ratio = f"{pgd_seconds / train['seconds']:.1f}x" if pgd_seconds and train.get("seconds") else ""
        ce_text = f"{100 * ce:.1f}%" if ce is not None else ""
        # In the cascade APGD-T attacks only what APGD-CE left: the points it takes on top.
        t_acc = next((a["robust_accuracy"] for a in e["attacks"] if a["name"] == "apgd-t"), None)
        t_text = f"-{100 * (ce - t_acc):.1f} pt" if ce is not None and t_acc is not None else ""
        print(f"| {label} | {kind} | {100 * e['clean']['accuracy']:.1f}% | {ce_text} | {t_text} | {100 * worst:.1f}% "
              f"| {kept_text} | {secs} | {ratio} |")

    agreements = [(r[0], results.get(r[0], "agreement")) for r in rows]
    agreements = [(n, a) for n, a in agreements if a]
    if agreements:
        print()
        print("| row | clean: cos | student's adversarial: student acc | teacher acc | same prediction | cos |")
        print("|---|--:|--:|--:|--:|--:|")
        for name, a in agreements:
            by = {r["images"]: r for r in a}
            c, adv = by["clean"], by["student's adversarial"]
            print(f"| {name} | {c['mean_cosine']:.3f} | {100 * adv['student_accuracy']:.1f}% | {100 * adv['teacher_accuracy']:.1f}% "
                  f"| {100 * adv['agreement']:.1f}% | {adv['mean_cosine']:.3f} |")


if __name__ == "__main__":
    main()
