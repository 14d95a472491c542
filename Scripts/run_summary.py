#!/usr/bin/env python3
"""Says what the main job's numbers mean (Scripts/run.sh prints it after the job's report).

Usage: python3 Scripts/run_summary.py DONE_DIR/report.json NATURAL_REPORT/report.json

Reads the job report (teacher and students, attacked alike) and the robustness report of a
network of the teacher's architecture trained naturally on the same images, and states for each
student how much of the teacher's robustness it kept and how far it stands above natural
training. Refuses to compare when the natural model was attacked under another protocol.
"""
import json
import os
import sys


def protocol(report):
    """The settings that decide a robust accuracy: images, threat and each attack's budget."""
    attacks = {a["name"]: {k: v for k, v in a["settings"].items() if k != "seed"} for a in report["attacks"]}
    return report["data"]["samples"], report["threat"]["norm"], report["threat"]["epsilon"], json.dumps(attacks, sort_keys=True)


def main():
    job_path, natural_path = sys.argv[1], sys.argv[2]
    job = json.load(open(job_path))
    natural = json.load(open(natural_path))
    base = os.path.dirname(job_path)
    teacher = job["teacher"].get("robustness")
    if teacher is None:
        sys.exit("run_summary: the job report has no teacher evaluation (made by an older rrmd?)")
    students = job["students"]
    first = json.load(open(os.path.join(base, os.path.dirname(students[0]["report"]), "report.json")))
    if protocol(first) != protocol(natural):
        sys.exit(f"run_summary: {natural_path} was attacked under another protocol than the students; delete it and rerun")
    nat_robust = natural["worst_case"]["robust_accuracy"]
    t_robust = teacher["robust_accuracy"]
    pct = lambda x: f"{100 * x:.1f} %"
    print()
    print(f"What this shows (attacks: {job['threat']}, first {first['data']['samples']} test images):")
    print(f"  teacher {job['teacher']['arch']} ({job['teacher'].get('trained_by') or 'unknown training'}): "
          f"clean {pct(teacher['clean_accuracy'])}, robust {pct(t_robust)}; it paid for that with adversarial training.")
    print(f"  the same architecture trained naturally on the same images: clean {pct(natural['clean']['accuracy'])}, "
          f"robust {pct(nat_robust)}.")
    for s in students:
        kept = f"{100 * s['retained']:.0f} % of the teacher's robustness" if s.get("retained") is not None else "nothing (the teacher has none)"
        print(f"  student {s['arch']} x{s['width']}: clean {pct(s['clean_accuracy'])}, robust {pct(s['robust_accuracy'])}: "
              f"it kept {kept}, {100 * (s['robust_accuracy'] - nat_robust):+.1f} points against natural training, "
              f"after {s['training_seconds']:.0f} s of training.")
    print("  'robust' counts the test images that stay correctly classified under every attack. The students ran no")
    print("  separate attack: they were trained to match the teacher's representation and predict the labels, at the")
    print("  training images and at copies moved from a random point near each image along the gradients their own")
    print("  training steps compute anyway (rrmd's replays, a free adversarial step; docs/rrm-study.md).")


if __name__ == "__main__":
    main()
