#!/usr/bin/env bash
# The RRM transfer study of docs/rrm-study.md: each row a teacher, student or baseline trained and
# then attacked the same way (APGD-CE, then APGD-T on what it left; 100 iterations each).
#
#   bash Scripts/rrm_study.sh                 # every row of the factor study, in the order below
#   bash Scripts/rrm_study.sh ref ep24 l2     # just these rows (and the teachers they need)
#   bash Scripts/rrm_study.sh --list          # the rows and their commands
#   bash Scripts/rrm_study.sh --publish       # copy summaries and teachers into docs/results/
#   STUDY=paper-fashion-mnist bash Scripts/rrm_study.sh   # the paper's setting (full test set)
#   STUDY=paper-mnist bash Scripts/rrm_study.sh
#
# STUDY=factors (default): one factor at a time from a fixed reference on the first 20,000
# Fashion-MNIST images, evaluated on the first 1,000 test images with 9 target classes.
# STUDY=mnist: the reference and the default recipe on MNIST (L-inf 0.3), the same way.
# STUDY=paper-*: a cheap PGD-AT teacher trained on the whole training set, a larger student
# distilled from it, and that student's own PGD-AT and natural training; evaluated on the whole
# test set with 3 target classes (AutoAttack's 9 would take hours per model on 2 cores).
#
# Resumable: a row whose evaluation exists is skipped, an interrupted training continues from
# its state file (rrmd saves one at every epoch end and on SIGTERM), and an interrupted
# evaluation from its journal (every attacked batch). Rows run one at a time; run
# it under `nice` when other work shares the machine (wall times are then only indicative).
# Scripts/rrm_study_table.py prints the study's table from $OUT. Variables: OUT, SAMPLES, EPS,
# THREADS, EVAL_ARGS, MNIST_DIR, RRMD, TRAIN_ONLY (1: train the rows, attack nothing).
# SAMPLES other than the study's own takes a first look: its files are named NAME.firstN.eval.*,
# beside (not instead of) the row's evaluation (a teacher's first look is what the table compares
# its students' first looks with):
#   SAMPLES=1000 STUDY=paper-mnist bash Scripts/rrm_study.sh teacher fast-at
set -euo pipefail
cd "$(dirname "$0")/.."

STUDY=${STUDY:-factors}
MNIST_DIR=${MNIST_DIR:-../shared/data/mnist}
case "$STUDY" in
  factors) OUT=${OUT:-results/rrm-study}; STUDY_SAMPLES=1000; EPS=${EPS:-0.1}; TARGETS=9; DATA_ARGS="" ;;
  paper-fashion-mnist) OUT=${OUT:-results/rrm-paper-fashion-mnist}; STUDY_SAMPLES=10000; EPS=${EPS:-0.1}; TARGETS=3; DATA_ARGS="" ;;
  paper-mnist) OUT=${OUT:-results/rrm-paper-mnist}; STUDY_SAMPLES=10000; EPS=${EPS:-0.3}; TARGETS=3; DATA_ARGS="--data-dir $MNIST_DIR" ;;
  mnist) OUT=${OUT:-results/rrm-study-mnist}; STUDY_SAMPLES=1000; EPS=${EPS:-0.3}; TARGETS=9; DATA_ARGS="--data-dir $MNIST_DIR" ;;
  screen-mnist) OUT=${OUT:-results/rrm-screen-mnist}; STUDY_SAMPLES=1000; EPS=${EPS:-0.3}; TARGETS=3; DATA_ARGS="--data-dir $MNIST_DIR"
    TEACHER_FROM=rrm-paper-mnist ;;
  *) echo "rrm_study: unknown STUDY '$STUDY' (factors, mnist, paper-fashion-mnist, paper-mnist, screen-mnist)" >&2; exit 2 ;;
esac
SAMPLES=${SAMPLES:-$STUDY_SAMPLES}
# The evaluation's file names: NAME.eval.* for the study's own, NAME.firstN.eval.* for a first look.
TAG=""
[ "$SAMPLES" = "$STUDY_SAMPLES" ] || TAG=".first$SAMPLES"
THREADS=${THREADS:-2}
EVAL_ARGS=${EVAL_ARGS:-"--epsilon $EPS --attacks apgd-ce,apgd-t --cascade --target-classes $TARGETS --sweep-samples 0 --check-samples 0"}

# NAME  KIND  TEACHER  ARGUMENTS. KIND is teacher (rrmd train, the model other rows distil from),
# train (a baseline trained by rrmd train), distill (rrmd distill from row TEACHER) or thead
# (row TEACHER's student with its teacher's classifier: `rrmd teacher-classifier`, no training). The
# reference is `ref`: a cnn-small student of the short cnn-small teacher, 10 epochs on the
# first 20,000 Fashion-MNIST training images, seed 1, the paper's loss, optimiser and single step
# per batch (--replays 1; rrmd distill's default is now 4 replays from a random start with weight 0.5). Rows are
# written out in full, so a later change of a default does not change what a row measures.
rows() {
  case "$STUDY" in
    factors) factor_rows ;;
    paper-fashion-mnist) paper_rows fashion-mnist 0.1 "" "--epsilon-ramp 0" ;;
    paper-mnist) paper_rows mnist 0.3 "--epsilon-ramp 2" "--epsilon-ramp 1" ;;
    mnist) mnist_rows ;;
    screen-mnist) screen_mnist_rows ;;
  esac
}

# Screening the paper setting's MNIST gap cheaply (docs/rrm-study.md, MNIST): the paper-mnist
# teacher itself (copied, not retrained), students of its own architecture (cnn-small trains
# about 6 times faster than resnet20 x1.25), all 60,000 images, the first 1,000 test images
# attacked with the paper rows' protocol. Each row changes one thing from `cs-r4`, the paper
# row `rrm`'s recipe.
screen_mnist_rows() {
  cat <<'EOF'
teacher     teacher -       --arch cnn-small --dataset mnist --epochs 10 --adversarial pgd --epsilon 0.3 --attack-steps 7 --seed 0 --epsilon-ramp 2
cs-r4       distill teacher --student cnn-small --epochs 2 --seed 1 --replays 4 --xent-weight 0.5 --replay-start clean
cs-r4-ramp  distill teacher --student cnn-small --epochs 2 --seed 1 --replays 4 --xent-weight 0.5 --epsilon-ramp 1 --replay-start clean
cs-free-lr05 train  -       --arch cnn-small --dataset mnist --epochs 2 --adversarial free --epsilon 0.3 --replays 4 --lr 0.05 --seed 1 --epsilon-ramp 1
cs-r4-rs    distill teacher --student cnn-small --epochs 2 --seed 1 --replays 4 --xent-weight 0.5 --match-noise 0.3 --replay-start clean
cs-r4-ramp-rs distill teacher --student cnn-small --epochs 2 --seed 1 --replays 4 --xent-weight 0.5 --epsilon-ramp 1 --match-noise 0.3 --replay-start clean
cs-r4-ramp-rand distill teacher --student cnn-small --epochs 2 --seed 1 --replays 4 --xent-weight 0.5 --epsilon-ramp 1 --replay-start random
cs-r4-5ep-ramp-rand distill teacher --student cnn-small --epochs 5 --seed 1 --replays 4 --xent-weight 0.5 --epsilon-ramp 1 --replay-start random
cs-r4-x005-ramp-rand distill teacher --student cnn-small --epochs 2 --seed 1 --replays 4 --xent-weight 0.005 --epsilon-ramp 1 --replay-start random
cs-r4-x0.05-ramp-rand distill teacher --student cnn-small --epochs 2 --seed 1 --replays 4 --xent-weight 0.05 --epsilon-ramp 1 --replay-start random
rn-r4-ramp-rand distill teacher --student resnet20 --width 1.25 --epochs 2 --seed 1 --replays 4 --xent-weight 0.5 --epsilon-ramp 1 --replay-start random
EOF
}

# The reference and the default recipe on MNIST (L-inf 0.3), as the factor study's rows.
mnist_rows() {
  cat <<'EOF'
t-short     teacher -       --arch cnn-small --dataset mnist --epochs 3 --limit 20000 --adversarial pgd --epsilon 0.3 --attack-steps 7 --seed 0 --epsilon-ramp 2
ref         distill t-short --student cnn-small --epochs 10 --limit 20000 --seed 1 --replays 1
r4          distill t-short --student cnn-small --epochs 5 --limit 20000 --seed 1 --replays 4 --xent-weight 0.005 --replay-start clean
r4-x05      distill t-short --student cnn-small --epochs 5 --limit 20000 --seed 1 --replays 4 --xent-weight 0.5 --replay-start clean
natural     train   -       --arch cnn-small --dataset mnist --epochs 10 --limit 20000 --seed 1
mlp-r4      distill t-short --student mlp --epochs 5 --limit 20000 --seed 1 --replays 4 --xent-weight 0.005 --replay-start clean
mlp-r4-x05  distill t-short --student mlp --epochs 5 --limit 20000 --seed 1 --replays 4 --xent-weight 0.5 --replay-start clean
EOF
}

# The paper's setting (design.md §1, Table 1) on a small dataset: a cheap teacher (cnn-small,
# PGD-AT with 7 steps, 10 epochs on every training image), a larger student (resnet20 ×1.25,
# whose own PGD-AT costs 6.9 times the teacher's: Scripts/rrm_cost.sh), that student trained
# naturally (the floor) and by PGD-AT with the teacher's recipe (the baseline), and RRM:
# - `rrm`: 2 epochs of 4 replays at rrmd's default weight 0.5. On 60,000 images that is 3,750
#   steps, more than the factor study's 5 epochs of 4 on 20,000 images (3,130), at about 1/7 of
#   PGD-AT's time: the row for the issue's "at least 5 times less";
# - `free-at-lr05`: the same replays without the teacher (what the teacher adds; the factor
#   study's strongest teacher-free recipe, whose halved rate matches the weight 0.5), with
#   `rrm-rand`'s radius schedule (DRAMP), so that the teacher is the only difference;
# - `rrm-5ep`: rrmd distill's defaults, spelled out (5 epochs of 4 replays at weight 0.5 from a
#   random start, radius ramped over the first epoch; 2.5 times less than PGD-AT);
#   `rrm-x005`: `rrm` at the paper's weight; `rrm-paper48`: the paper's own recipe, 48 epochs of single steps (about
#   PGD-AT's time here, since this baseline trains 10 epochs);
# - `w1-*`: the first student, resnet20 ×1, whose PGD-AT costs only 4.6 times the teacher's
#   (short of the issue's 5), kept as measured;
# - `*-thead`: a row's student with its teacher's classifier (the study's "beyond the paper");
# - `rrm-rand`: `rrm` with replays from a random start (and on MNIST a 1-epoch replay ramp): the
#   MNIST screen's cure for replays that a student overfits (STUDY=screen-mnist);
# - `fast-at`: the teacher-free control of `rrm-rand`: Fast-AT (one FGSM step from a random
#   start per batch, cyclic rate), 4 epochs, each step about two of rrm's.
# - `teacher-r20`: a stronger teacher at a teacher's cost, for the second target's "a teacher at
#   least as robust as the baseline": resnet20 ×0.5 by PGD-AT with 3 steps (issue 5's 7-step run
#   of it reached 74.2 % on Fashion-MNIST, the cnn-small 65.5 %; with 7 steps it costs only 4.0
#   times less than the student's PGD-AT, with 3 steps 6.5 times); `rrm-rand-tr20`: `rrm-rand`
#   distilled from it; `rrm-5ep-tr20`: `rrm-5ep` (rrmd's defaults) from it; `rrm-rand-tpgd`:
#   `rrm-rand` from the baseline itself (a teacher exactly as robust as the baseline, at the
#   baseline's cost: the premise of the second target, tested on its own); `rrm-5ep-tpgd`:
#   rrmd's defaults from the baseline (the premise with the budget that lifted `rrm-5ep-tr20`;
#   it collapsed to 49.8 %: `rrm-5ep-tpgd-s2`, another seed, says whether that is chance;
#   `rrm-5ep-tpgd-probe` runs it again with the per-epoch APGD probe and its guard, to see when
#   the robustness goes and whether the guard keeps an epoch that still had it;
#   `rrm-5ep-tpgd-step05`: the same with replay steps of half the radius, which keep the
#   replays inside the ball instead of on its corners, the suspected way to the masking).
# Ordered by what the targets need. RAMP: adversarial training's radius ramp (MNIST at 0.3
# stays at chance without one); DRAMP: the replays' ramp of the random-start row, pinned either
# way (rrmd's default ramps a random start's replays over one epoch).
paper_rows() {
  local d=$1 e=$2 ramp=$3 dramp=$4 s="resnet20 --width 1.25"
  cat <<EOF
teacher     teacher -       --arch cnn-small --dataset $d --epochs 10 --adversarial pgd --epsilon $e --attack-steps 7 --seed 0 $ramp
rrm         distill teacher --student $s --epochs 2 --seed 1 --replays 4 --xent-weight 0.5 --replay-start clean
natural     train   -       --arch $s --dataset $d --epochs 10 --seed 1
pgd-at      train   -       --arch $s --dataset $d --epochs 10 --adversarial pgd --epsilon $e --attack-steps 7 --seed 1 $ramp
free-at-lr05 train  -       --arch $s --dataset $d --epochs 2 --adversarial free --epsilon $e --replays 4 --lr 0.05 --seed 1 $dramp
fast-at     train   -       --arch $s --dataset $d --epochs 4 --adversarial fgsm-rs --epsilon $e --schedule cyclic --seed 1 $ramp
rrm-5ep     distill teacher --student $s --epochs 5 --seed 1 --replays 4 --xent-weight 0.5 --replay-start random --epsilon-ramp 1
rrm-x005    distill teacher --student $s --epochs 2 --seed 1 --replays 4 --xent-weight 0.005 --replay-start clean
rrm-paper48 distill teacher --student $s --epochs 48 --seed 1 --replays 1
w1-rrm      distill teacher --student resnet20 --epochs 5 --seed 1 --replays 4 --xent-weight 0.005 --replay-start clean
w1-rrm-x05  distill teacher --student resnet20 --epochs 5 --seed 1 --replays 4 --xent-weight 0.5 --replay-start clean
rrm-x005-thead thead rrm-x005
rrm-rand    distill teacher --student $s --epochs 2 --seed 1 --replays 4 --xent-weight 0.5 --replay-start random $dramp
w1-rrm-thead thead w1-rrm
teacher-r20 teacher -       --arch resnet20 --width 0.5 --dataset $d --epochs 10 --adversarial pgd --epsilon $e --attack-steps 3 --seed 0 $ramp
rrm-rand-tr20 distill teacher-r20 --student $s --epochs 2 --seed 1 --replays 4 --xent-weight 0.5 --replay-start random $dramp
rrm-rand-tpgd distill pgd-at --student $s --epochs 2 --seed 1 --replays 4 --xent-weight 0.5 --replay-start random $dramp
rrm-5ep-tr20 distill teacher-r20 --student $s --epochs 5 --seed 1 --replays 4 --xent-weight 0.5 --replay-start random --epsilon-ramp 1
rrm-5ep-tpgd distill pgd-at --student $s --epochs 5 --seed 1 --replays 4 --xent-weight 0.5 --replay-start random --epsilon-ramp 1
rrm-5ep-tpgd-s2 distill pgd-at --student $s --epochs 5 --seed 2 --replays 4 --xent-weight 0.5 --replay-start random --epsilon-ramp 1
rrm-5ep-tpgd-probe distill pgd-at --student $s --epochs 5 --seed 1 --replays 4 --xent-weight 0.5 --replay-start random --epsilon-ramp 1 --probe-images 512
rrm-5ep-tpgd-step05 distill pgd-at --student $s --epochs 5 --seed 1 --replays 4 --xent-weight 0.5 --replay-start random --epsilon-ramp 1 --probe-images 512 --replay-step 0.5
EOF
}

factor_rows() {
  cat <<'EOF'
t-short     teacher -       --arch cnn-small --dataset fashion-mnist --epochs 2 --limit 20000 --adversarial pgd --epsilon 0.1 --attack-steps 3 --seed 0
ref         distill t-short --student cnn-small --epochs 10 --limit 20000 --seed 1 --replays 1
seed2       distill t-short --student cnn-small --epochs 10 --limit 20000 --seed 2 --replays 1
noise0.1    distill t-short --student cnn-small --epochs 10 --limit 20000 --seed 1 --match-noise 0.1 --replays 1
noise0.05   distill t-short --student cnn-small --epochs 10 --limit 20000 --seed 1 --match-noise 0.05 --replays 1
noise0.2    distill t-short --student cnn-small --epochs 10 --limit 20000 --seed 1 --match-noise 0.2 --replays 1
free2-ep5   distill t-short --student cnn-small --epochs 5 --limit 20000 --seed 1 --replays 2 --xent-weight 0.005 --replay-start clean
free2       distill t-short --student cnn-small --epochs 10 --limit 20000 --seed 1 --replays 2 --xent-weight 0.005 --replay-start clean
free4-ep5   distill t-short --student cnn-small --epochs 5 --limit 20000 --seed 1 --replays 4 --xent-weight 0.005 --replay-start clean
free4       distill t-short --student cnn-small --epochs 10 --limit 20000 --seed 1 --replays 4 --xent-weight 0.005 --replay-start clean
free4-ep3   distill t-short --student cnn-small --epochs 3 --limit 20000 --seed 1 --replays 4 --xent-weight 0.005 --replay-start clean
free8-ep2   distill t-short --student cnn-small --epochs 2 --limit 20000 --seed 1 --replays 8 --xent-weight 0.005 --replay-start clean
free8-ep3   distill t-short --student cnn-small --epochs 3 --limit 20000 --seed 1 --replays 8 --xent-weight 0.005 --replay-start clean
natural     train   -       --arch cnn-small --dataset fashion-mnist --epochs 10 --limit 20000 --seed 1
fast-at     train   -       --arch cnn-small --dataset fashion-mnist --epochs 10 --limit 20000 --seed 1 --adversarial fgsm-rs --epsilon 0.1 --schedule cyclic
xent0.05    distill t-short --student cnn-small --epochs 10 --limit 20000 --seed 1 --xent-weight 0.05 --replays 1
xent0.5     distill t-short --student cnn-small --epochs 10 --limit 20000 --seed 1 --xent-weight 0.5 --replays 1
l2          distill t-short --student cnn-small --epochs 10 --limit 20000 --seed 1 --feature-loss l2 --xent-weight 0.001 --replays 1
ep24        distill t-short --student cnn-small --epochs 24 --limit 20000 --seed 1 --replays 1
img60k      distill t-short --student cnn-small --epochs 10 --seed 1 --replays 1
ep48        distill t-short --student cnn-small --epochs 48 --limit 20000 --seed 1 --replays 1
t-long      teacher -       --arch cnn-small --dataset fashion-mnist --epochs 10 --limit 20000 --adversarial pgd --epsilon 0.1 --attack-steps 7 --seed 0
tlong-ref   distill t-long  --student cnn-small --epochs 10 --limit 20000 --seed 1 --replays 1
resnet20    distill t-short --student resnet20 --width 0.5 --epochs 10 --limit 20000 --seed 1 --replays 1
mlp         distill t-short --student mlp --epochs 10 --limit 20000 --seed 1 --replays 1
resnet20-r4 distill t-short --student resnet20 --width 0.5 --epochs 5 --limit 20000 --seed 1 --replays 4 --xent-weight 0.005 --replay-start clean
mlp-r4      distill t-short --student mlp --epochs 5 --limit 20000 --seed 1 --replays 4 --xent-weight 0.005 --replay-start clean
tlong-r4    distill t-long  --student cnn-small --epochs 5 --limit 20000 --seed 1 --replays 4 --xent-weight 0.005 --replay-start clean
proj        distill t-short --student cnn-small --epochs 10 --limit 20000 --seed 1 --replays 1 --projection always
proj-bias   distill t-short --student cnn-small --epochs 10 --limit 20000 --seed 1 --replays 1 --projection always --projection-bias
widen       distill t-short --student cnn-small --width 0.5 --epochs 10 --limit 20000 --seed 1 --replays 1
widen-bias  distill t-short --student cnn-small --width 0.5 --epochs 10 --limit 20000 --seed 1 --replays 1 --projection-bias
narrow      distill t-short --student cnn-small --width 2 --epochs 10 --limit 20000 --seed 1 --replays 1
ep96        distill t-short --student cnn-small --epochs 96 --limit 20000 --seed 1 --replays 1
free-at4-ep5 train  -       --arch cnn-small --dataset fashion-mnist --epochs 5 --limit 20000 --seed 1 --adversarial free --epsilon 0.1 --replays 4
free-at4-ep5-lr05 train -   --arch cnn-small --dataset fashion-mnist --epochs 5 --limit 20000 --seed 1 --adversarial free --epsilon 0.1 --replays 4 --lr 0.05
r4-xent0.05 distill t-short --student cnn-small --epochs 5 --limit 20000 --seed 1 --replays 4 --xent-weight 0.05 --replay-start clean
r4-xent0.5  distill t-short --student cnn-small --epochs 5 --limit 20000 --seed 1 --replays 4 --xent-weight 0.5 --replay-start clean
r4-xent2    distill t-short --student cnn-small --epochs 5 --limit 20000 --seed 1 --replays 4 --xent-weight 2 --replay-start clean
tlong-r4-xent0.5 distill t-long --student cnn-small --epochs 5 --limit 20000 --seed 1 --replays 4 --xent-weight 0.5 --replay-start clean
r4-xent0.5-rand distill t-short --student cnn-small --epochs 5 --limit 20000 --seed 1 --replays 4 --xent-weight 0.5 --replay-start random --epsilon-ramp 0
r4-xent0.5-ramp-rand distill t-short --student cnn-small --epochs 5 --limit 20000 --seed 1 --replays 4 --xent-weight 0.5 --epsilon-ramp 1 --replay-start random
tlong-r4-xent0.5-rand distill t-long --student cnn-small --epochs 5 --limit 20000 --seed 1 --replays 4 --xent-weight 0.5 --replay-start random --epsilon-ramp 0
EOF
}

# RRMD: the binary the rows run (default the release build). A long queue is best run from a
# copy, so rebuilding the working tree meanwhile cannot change a study half-way.
R=${RRMD:-.build/release/rrmd}
# What is kept in git: every row's summaries and the teachers' checkpoints, so a later session
# or another machine continues the study with the very same teachers (a teacher retrained on a
# CPU with other vector units differs in the last bits, and so would every student after it);
# and, for a row not yet evaluated, its trained checkpoint or its resumable training state, so
# that rows longer than a session (the paper setting's) continue where they stopped.
KEEP=docs/results/$(basename "$OUT")
if [ "${1:-}" = "--list" ]; then rows; exit 0; fi
if [ "${1:-}" = "--publish" ]; then
  mkdir -p "$KEEP"
  for f in "$OUT"/*.eval.json "$OUT"/*.train.json "$OUT"/*.agreement.json; do [ -e "$f" ] && cp "$f" "$KEEP/"; done
  # A trained row that a distilled row learns from (the baseline as teacher) is a teacher too.
  taught=" $(rows | awk '$2 == "distill" {print $3}' | sort -u | tr '\n' ' ')"
  while read -r name kind _; do
    # A borrowed teacher is kept by the study it belongs to.
    if [ "$kind" = teacher ] && [ -n "${TEACHER_FROM:-}" ]; then continue; fi
    # The headline students stay too: later steps (masking checks, the teacher's classifier) and
    # anyone who wants to attack them again need their weights.
    if [ "$kind" = teacher ] || [[ "$taught" == *" $name "* ]] || [ "$name" = rrm-rand ] ||
      [ ! -s "$OUT/$name.eval.json" ]; then
      if [ -s "$OUT/$name.safetensors.zst" ]; then
        cp "$OUT/$name.safetensors.zst" "$KEEP/"
        rm -f "$KEEP/$name.safetensors.zst.state"
      elif [ -s "$OUT/$name.safetensors.zst.state" ]; then
        cp "$OUT/$name.safetensors.zst.state" "$KEEP/"
      fi
      # An evaluation under way: the batches it attacked so far; a finished one: nothing.
      if [ -s "$OUT/$name.eval.json" ]; then
        rm -f "$KEEP/$name.eval.journal"
      elif [ -s "$OUT/$name.eval.journal" ]; then
        cp "$OUT/$name.eval.journal" "$KEEP/"
      fi
    else
      # Evaluated: the summaries say all there is; a student's weights are not kept.
      rm -f "$KEEP/$name.safetensors.zst" "$KEEP/$name.safetensors.zst.state" "$KEEP/$name.eval.journal"
    fi
  done < <(rows)
  # First looks (NAME.firstN.eval.*) under way keep their journals too; finished ones do not.
  for j in "$OUT"/*.first*.eval.journal; do
    [ -e "$j" ] || continue
    if [ -s "${j%.journal}.json" ]; then rm -f "$KEEP/$(basename "$j")"; else cp "$j" "$KEEP/"; fi
  done
  echo "rrm_study: summaries, teachers and unfinished rows of $OUT copied into $KEEP" >&2
  exit 0
fi
bash Scripts/setup.sh >&2
[ -n "${RRMD:-}" ] || swift build -c release --product rrmd >&2
mkdir -p "$OUT"

# field NAME N: the Nth whitespace-separated field of row NAME (4 = the rest of the line).
row_of() { rows | awk -v n="$1" '$1 == n'; }

# train_row NAME: trains the row's model into $OUT/NAME.safetensors.zst (skipped when present).
train_row() {
  local name=$1 line kind teacher args
  line=$(row_of "$name")
  [ -n "$line" ] || { echo "rrm_study: no row named '$name' (--list shows them)" >&2; exit 2; }
  read -r _ kind teacher args <<<"$line"
  local out="$OUT/$name.safetensors.zst"
  [ -s "$out" ] && return 0
  # A study that borrows another study's teacher (TEACHER_FROM) copies it rather than retraining.
  if [ "$kind" = teacher ] && [ -n "${TEACHER_FROM:-}" ]; then
    local from
    for from in "results/$TEACHER_FROM" "docs/results/$TEACHER_FROM"; do
      if [ -s "$from/$name.safetensors.zst" ]; then
        echo "== $name: the teacher of $from" >&2
        cp "$from/$name.safetensors.zst" "$out"
        return 0
      fi
    done
  fi
  if [ -s "$KEEP/$name.safetensors.zst" ]; then
    echo "== $name: the kept checkpoint $KEEP/$name.safetensors.zst" >&2
    cp "$KEEP/$name.safetensors.zst" "$out"
    if [ -s "$KEEP/$name.train.json" ]; then cp "$KEEP/$name.train.json" "$OUT/"; fi
    return 0
  fi
  if [ ! -e "$out.state" ] && [ -s "$KEEP/$name.safetensors.zst.state" ]; then
    echo "== $name: continuing from the kept state $KEEP/$name.safetensors.zst.state" >&2
    cp "$KEEP/$name.safetensors.zst.state" "$out.state"
  fi
  if [ "$kind" = thead ]; then
    # TEACHER names the distilled row; its own TEACHER is the model whose classifier it takes.
    train_row "$teacher"
    local source_teacher
    source_teacher=$(row_of "$teacher" | awk '{print $3}')
    echo "== $name: rrmd teacher-classifier --student $teacher --teacher $source_teacher" >&2
    # shellcheck disable=SC2086
    nice $R teacher-classifier --student "$OUT/$teacher.safetensors.zst" --teacher "$OUT/$source_teacher.safetensors.zst" \
      $DATA_ARGS --threads "$THREADS" --out "$out" --json > "$OUT/$name.train.json.part" 2> "$OUT/$name.train.log"
  elif [ "$kind" = distill ]; then
    train_row "$teacher"
    echo "== $name: rrmd distill --teacher $teacher $args" >&2
    # shellcheck disable=SC2086
    nice $R distill --teacher "$OUT/$teacher.safetensors.zst" $args $DATA_ARGS --threads "$THREADS" --out "$out" \
      --no-evaluate --json > "$OUT/$name.train.json.part" 2> "$OUT/$name.train.log"
  else
    echo "== $name: rrmd train $args" >&2
    # shellcheck disable=SC2086
    nice $R train $args $DATA_ARGS --threads "$THREADS" --state "$out.state" --out "$out" --json \
      > "$OUT/$name.train.json.part" 2> "$OUT/$name.train.log"
  fi
  mv "$OUT/$name.train.json.part" "$OUT/$name.train.json"
}

# eval_row NAME: the attack protocol on the row's model (skipped when done).
eval_row() {
  local name=$1
  local e="$name$TAG"
  # A row (or first look) finished in an earlier session counts as done: its summaries are
  # restored from git.
  if [ ! -s "$OUT/$e.eval.json" ] && [ -s "$KEEP/$e.eval.json" ]; then
    for f in "$KEEP/$name".*.json; do cp "$f" "$OUT/"; done
  fi
  [ -s "$OUT/$e.eval.json" ] && { echo "skip $e (done)" >&2; return 0; }
  train_row "$name"
  # TRAIN_ONLY=1: the model now, its attack later (a screening such as rrm_teacher_head.sh first).
  [ "${TRAIN_ONLY:-0}" = 1 ] && return 0
  # The attacked batches of an evaluation cut short in an earlier session (rrmd reads back only
  # those of exactly this evaluation: same checkpoint, settings and threads).
  if [ ! -e "$OUT/$e.eval.journal" ] && [ -s "$KEEP/$e.eval.journal" ]; then cp "$KEEP/$e.eval.journal" "$OUT/"; fi
  echo "== $e: rrmd evaluate --samples $SAMPLES $EVAL_ARGS" >&2
  # shellcheck disable=SC2086
  nice $R evaluate --model "$OUT/$name.safetensors.zst" --samples "$SAMPLES" $EVAL_ARGS $DATA_ARGS --threads "$THREADS" \
    --journal "$OUT/$e.eval.journal" --report "$OUT/report-$e" --json > "$OUT/$e.eval.json.part" 2> "$OUT/$e.eval.log"
  mv "$OUT/$e.eval.json.part" "$OUT/$e.eval.json"
}

# agreement_row NAME: for a distilled row, how closely the student follows its teacher on clean
# images and on each one's APGD-CE adversarial images (`rrmd agreement`; skipped when done).
agreement_row() {
  local name=$1 line kind teacher
  line=$(row_of "$name")
  read -r _ kind teacher _ <<<"$line"
  [ "$kind" = distill ] || return 0
  [ -s "$OUT/$name.agreement.json" ] && return 0
  if [ -s "$KEEP/$name.agreement.json" ]; then cp "$KEEP/$name.agreement.json" "$OUT/"; return 0; fi
  # A row restored from git has no student checkpoint to compare (only its summaries are kept).
  [ -s "$OUT/$name.safetensors.zst" ] || return 0
  # A student restored from git was never distilled here: its teacher comes from git too.
  train_row "$teacher"
  # shellcheck disable=SC2086
  nice $R agreement --student "$OUT/$name.safetensors.zst" --teacher "$OUT/$teacher.safetensors.zst" --samples 500 \
    --epsilon "$EPS" $DATA_ARGS --threads "$THREADS" --json > "$OUT/$name.agreement.json.part"
  mv "$OUT/$name.agreement.json.part" "$OUT/$name.agreement.json"
}

names=("$@")
if [ ${#names[@]} -eq 0 ]; then mapfile -t names < <(rows | awk '{print $1}'); fi
for n in "${names[@]}"; do
  eval_row "$n"
  [ "${TRAIN_ONLY:-0}" = 1 ] || agreement_row "$n"
done
STUDY=$STUDY python3 Scripts/rrm_study_table.py "$OUT"
