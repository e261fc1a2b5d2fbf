"""Named configs of the paper's adversary experiments (Adversarial Takeover of NCA, 2022).

Every config starts from `base.TrainConfig`'s documented defaults; the comments here say why a
field differs. `<name>_testing` variants are tiny (seconds) versions for tests.

Recipes are compared on the development seeds (`eval_seed`, 32 organisms), never on the held-out
test set (`zoo.TEST_SEED`), which judges an entry once it is written (WORKSPACE.md, Results).
"""

from tf_multinca.configs import base

# The paper's common setting: inject at step 60, l1 = 1 from the 64th step after injection and
# l2 = 1e-3 (SPEC section 3), batch 8, 48x48, Adam at 2e-3, fire rate 0.5.
PAPER_ADVERSARY = base.TrainConfig(
    kind='adversary',
    convention='paper',
    inject_min=60,
    inject_max=60,
    l1=1.0, l1_schedule='window', l1_start=64,
    # N_old from the 150th step, not the 64th (SPEC's example): l2 N_old (~0.5 at first against
    # L_target ~0.04) then dominates from age 64, and the adversary learns to take over within
    # 64 steps by overgrowing the organism, which it never fully undoes (lizard_red, 3500
    # steps: 700 alive cells, MSE 0.027 at age 500). From 150, the takeover keeps the image
    # and ends near age 200, the published adversary's timing (original fraction 0.56 / 0.01 at
    # ages 64 / 150).
    l2=1e-3, l2_schedule='window', l2_start=150,
    batch_size=8,
    # 32 steps per train step keeps one step at a few seconds on 2 CPU cores; the pool carries
    # each sample's age, so the loss window (from age 64) is reached on the second visit and
    # then covers whole rollouts, up to max_age. 64-step rollouts cost ~1.5-2x per step and
    # were better per step where measured (session 17: lizard_grow_to_persist MSE 0.0134 ->
    # 0.0093 in 3500 steps instead of 4500, firework_grow_to_persist 0.0278 -> 0.0220): those
    # configs use them, and lizard_red_spray; lizard_no_tail and lizard_grow_to_persist draw
    # 64-96 steps, so that the first rollout after the injection reaches N_old (from age 84).
    rollout_min=32, rollout_max=32,
    pool_size=64,
    replace_worst=1,
    # Every sample lives from injection to max_age (~150 train steps): the ages up to the
    # evaluation's 500 are trained as much as the takeover. With 'worst' (Distill's policy) a
    # sample lives ~64 steps (ages ~300 at most), and the takeover was lost again in the pool
    # (lizard_red, 2000 steps: original fraction 0.12 at age 500; 'expired': 0.000).
    replace_policy='expired',
    max_age=600,
    # Measured for lizard_red (8 seeds, 500 steps after injection): validation MSE 0.026 at
    # 1000 steps, 0.009-0.013 over 2000-3000, 0.004 / 0.003 at 3250 / 3500 (the 1e-4 phase);
    # final evaluation 0.0023, original fraction 0.000 (the published adversary: 0.0026).
    lr=2e-3, lr_schedule='piecewise', lr_boundaries=(1000, 3000), lr_values=(2e-3, 5e-4, 1e-4),
    steps=3500,  # 0.55-0.9 s per step on 2 idle CPU cores: ~45 min (~65 min shared with 2 runs)
    adversary_init='copy',  # a copy of the original converges much faster than a random rule
    checkpoint_every=25,
    image_every=50,
    log_every=10,
    # Rollouts are chaotic and the MSE at age 500 moves between checkpoints (0.009 / 0.013 /
    # 0.004 at 2500 / 3000 / 3250 steps): validate every 250 steps (10-25 s each) and export
    # the best validated weights.
    eval_every=250,
)


def lizard_red():
  """Fig. 12 top: the persistent green lizard turned red from a 2x2 square (the main job)."""
  return PAPER_ADVERSARY.replace(
      description='paper fig. 12: persistent lizard -> red lizard, 2x2 square',
      original='paper/lizard/persist', target='paper/images/lizard_red', injection='square:2',
      compare_with='paper/lizard/virus/lizard_persist_to_red_squareside_2',
      # 1500 steps at lr 1e-4 instead of 500: the low-lr phase is where the age-500 MSE drops
      # (lizard_red: 0.009-0.013 before it, 0.004 / 0.003 after 250 / 500 steps of it, with a
      # tail of bad seeds on 32 seeds: 0.0050 +- 0.0059 against the published 0.0031; the 10 %
      # spray: 0.048 at 3000, 0.014 at 3250 and 3500, MSE 0.020 at the end). Shorter is not
      # enough (issue 18's 10-minute goal): 1500 steps with the lr dropping at 500 / 1000
      # (session 14, 32 seeds): 32/32 but MSE 0.0157 (bar 0.0050), worst 0.026. Nor the
      # recipe that sped up the fig. 15 sweep (session 22: 64-96-step rollouts, N_old from 84,
      # the weights' average from 500, 2000 steps with lr from 600 / 1200; 20 min of training,
      # one thread beside another run, 0.59 s/step): averaged validations 0.079 / 0.036 /
      # 0.023 / 0.019 / 0.014 / 0.0115 / 0.0093 / 0.0077 at 250..2000 (32 seeds; 31/32 at
      # 2000); the average at 1750 on the final seeds: 30/32 complete, MSE 0.0094 (median
      # 0.0094: the whole lizard a shade off red, not a few bad seeds), 605 alive. Session 24,
      # the weights' average (0.998 from 1000) on these 32-step rollouts, one thread beside
      # another run, 0.5 s/step (32 seeds at the end): 2000 steps with the lr dropping at
      # 600 / 1300: 30/32, MSE 0.0127; 2000 steps halving the lr every 400 (x0.707 per 200):
      # 31/32, MSE 0.0127; 3000 steps dropping at 800 / 2000 (validations 0.0105 / 0.0066 /
      # 0.0063 at 2000 / 2500 / 3000): 31/32, MSE 0.0066, worst 0.013 (bar 0.0050); 3500
      # steps dropping at 1000 / 2500 (validations 0.0089 / 0.0050 / 0.0042 / 0.0048 at
      # 2000 / 2750 / 3250 / 3500; the average at 3250 picked): 31/32, MSE 0.0055, worst 0.013.
      # Session 25, one thread each beside another run (32 seeds at the end): this config cut
      # to 3500 steps (the committed run's best step; the lr from 1000 / 3000, raw weights):
      # best validation 0.0054 at 3250, then 32/32, MSE 0.0058 (median 0.0050), worst 0.025
      # (3x bar 0.024), 40 min at 0.68 s/step: the committed run's 0.0039 at that step is one
      # draw of a wide spread. The same at batch 4 (0.29 s/step, 17 min): validations 0.018 /
      # 0.0090 / 0.0064 at 2000 / 3250 / 3500; 32/32, MSE 0.0104, worst 0.068.
      steps=4500,
      # Every sample in the gradient, not the paper's outlier rule (loss > 5x the batch mean is
      # dropped): with 'expired' replacement a sample whose square died stays in the pool for
      # its whole life, and as an outlier it never taught the adversary anything. With the
      # paper's rule (4500 steps): outliers dropped in 22-34 % of the steps after step 1000,
      # and the square died in 5 of 32 evaluation seeds (27/32 complete, MSE 0.0085).
      outlier_factor=0.0)


def lizard_red_spray():
  """The spray variant: 10 % of the cells (the published virusrate_10% adversary)."""
  # Passes the bar since session 18 (64-step rollouts: the last comment below). Trained as
  # lizard_red (a copy of the original, 4500 steps, N_old 1e-3 from age 150, the paper's outlier
  # rule; ~56 min) it took over in 32 of 32 seeds, but its MSE plateaued at 0.012-0.014 (32 seeds:
  # 0.0137 +- 0.0080, worst 0.0435, 651 alive; the published 0.0059, worst 0.0095, 597 alive): a red
  # lizard with blurred toes and eye. Without the outlier rule, same otherwise: 0.0155. A warm start
  # from results/lizard_red (adversary_init=from:..., 5e-4 for 500 steps, then 1e-4) was worse:
  # validation 0.112 / 0.060 / 0.025 / 0.032 at 250 / 500 / 750 / 1000 steps (the larger lr undid
  # the square adversary's drawing). With fig. 15's copy-init setting (below, session 13's entry:
  # 4500 steps, 65 min beside another run): 32 of 32, MSE 0.0100 +- 0.0053, worst 0.0241 (under the
  # 3x bar now), 637 alive; best validated weights from step 4250 (validation 0.0067 on 8 seeds).
  return lizard_red().replace(
      description='paper: persistent lizard -> red lizard, spray 10 %', injection='spray:0.1',
      compare_with='paper/lizard/virus/lizard_persist_to_red_virusrate_10%',
      # N_old from age 84, the authors' spray setting (lizard_red keeps 150, where a square
      # overgrew with N_old from 64), weighted 1e-2 as fig. 15's copy-init cells: a spray
      # takes over at once, and a rule close to the original leaves single original cells
      # that 1e-3 barely charges (see `_perturbation`). Every sample in the gradient
      # (outlier_factor 0), as fig. 15's copy cells (their 5 % spray, with these settings,
      # stopped on the loss criterion at step 1750: results/perturbation/perturbation_copy).
      # The target loss stays from age 64: from age 20 (as the grow-to-persist configs, to
      # hold the shape through the takeover; session 14, 4500 steps, 32-seed validations) it
      # was far worse: 32/32 but MSE 0.037 (worst 0.109), 771-849 alive cells at the last
      # validations: the adversary overgrew for good. With the 1e-4 phase 2000 steps long
      # (5000 steps) and 32-seed validations (session 15, 46 min beside another run): 32/32,
      # MSE 0.0095, but worst 0.038 (over the 3x bar, 0.029): not kept. The weights' moving
      # average (weight_average 0.998 from step 1000) of that same trajectory (runs are
      # deterministic: the average does not change training), judged offline on the
      # validation seeds, every 250 steps from 3000 to 4500: 0.0112 / 0.0103 / 0.0124 / 0.0118
      # / 0.0117 / 0.0108 / 0.0125, and 0.0089 at 5000, against the raw weights' best 0.0111.
      l2=1e-2, l2_start=84, outlier_factor=0.0,
      # Hence: 5000 steps (the 1e-4 phase 2000 long), 32-seed validations, and the weights'
      # moving average (0.998 per step from step 1000) validated and exported. Measured
      # (session 15's entry, 44 min beside another run; the average at step
      # 5000 picked, validation 0.0089): 32/32, MSE 0.0074 (bar 0.0089; median 0.0056, the
      # published 0.0057), but one seed of 32 overgrows (839 alive cells, MSE 0.033; the bar's
      # worst-seed limit 0.029): short of the bar on that check only. The entry before it
      # (4500 steps, raw weights): MSE 0.0100, worst 0.024.
      # Tried in session 16, not kept: 6000 steps with a 3e-5 phase from 5000 (the same
      # trajectory to 5000; 51 min beside another run): averaged validations 0.0086 / 0.0080 /
      # 0.0088 at 5250 / 5500 / 5750; the average at 5500 on the final seeds: MSE 0.0074
      # (median 0.0063), and the same seed overgrows (seed 15 of the evaluation: 862 alive
      # cells, MSE 0.0375; its tail grows on across the torus's edge from age ~100, where the
      # published adversary keeps the shape): the longer low-lr phase does not remove it.
      eval_seeds=32, weight_average=0.998, weight_average_from=1000,
      # 64-step rollouts instead of the common 32 (the authors': 96), in 3500 steps (the 1e-4
      # phase from 2500) instead of the 5000 (from 3000) of the entries above; the reasoning:
      # the overgrowing seed's tail runs on for ~100 steps after the takeover, longer than a
      # 32-step rollout sees. Measured (results/lizard_red_spray,
      # sessions 17-18, 89 min beside another run or CI, 1.53 s/step; the average at step
      # 2500 picked, validation 0.0093, later ones 0.0107-0.0122): 32/32, MSE 0.0088 (bar
      # 0.0089; median 0.0082, the published 0.0059), worst 0.0125 (was 0.033; the 3x limit
      # 0.029), 663 alive (published 597): passes, the worst seed fixed, the mean at the
      # bar's edge.
      rollout_min=64, rollout_max=64, steps=3500, lr_boundaries=(1000, 2500))


def lizard_no_tail():
  """Fig. 12 middle: remove the tail (shape changes; harder: more steps)."""
  return PAPER_ADVERSARY.replace(
      description='paper fig. 12: persistent lizard -> lizard without tail, 2x2 square',
      original='paper/lizard/persist', target='paper/images/lizard_no_tail',
      injection='square:2',
      compare_with='paper/lizard/virus/lizard_persist_to_no_tail_squareside_2',
      # As lizard_red: 1500 steps at lr 1e-4 (with 500 of them, 3500 steps: MSE 0.0055 on 8
      # seeds against the published 0.0018, validation 0.0033 at 3250).
      # As lizard_red: every sample in the gradient. With the paper's outlier rule (4500
      # steps, 32 seeds): complete in 30 of 32, MSE 0.0067 +- 0.0068. Without it (4500 steps,
      # 45 min shared): complete in 32 of 32, MSE 0.0053 (worst 0.025) against the published
      # 0.0026 (worst 0.0092): the shape is right, the MSE not yet at the bar (0.0039).
      # Tried in session 14, not kept: l_outside 1e-4 (to charge the stub of the tail the run
      # keeps: 518 alive against 473) with 32-seed validations, 4500 steps: best validation
      # 0.0057 (step 3250), final 32 seeds 0.0084, worst 0.062, 31/32 complete.
      outlier_factor=0.0,
      # A longer low-lr tail (1e-4 for 1250 steps, then 3e-5 for 1000) and validations on 32
      # seeds, so that the best weights are picked with less noise. Measured (session 15,
      # results/lizard_no_tail, 5250 steps, 46 min beside another run; best validation 0.0045
      # at step 4750): 32/32 complete, MSE 0.0049 (worst 0.014) against 4500 steps with 8-seed
      # validations: 0.0053 (worst 0.025); still above the bar (0.0039; published 0.0026):
      # the adversary keeps a stub of the tail (531 alive cells, published 473). The same run
      # with weight_average 0.998 from step 1000 (the same trajectory; 46 min): its validations
      # fell steadily to 0.0036 (step 5250; the raw weights' best 0.0045), but on the final
      # seeds MSE 0.0052, worst 0.033 (over the 3x bar, 0.028): not kept.
      # Nor a 3e-5 phase 2000 steps long with the average (6250 steps, session 16, 47 min
      # beside another run; the same trajectory to 5250): the averaged validations stayed at
      # 0.0036-0.0041 from 4500 to 6250, the best again the average at 5250, and the final
      # seeds gave the same MSE 0.0052 (median 0.0035), worst 0.033: a seed whose severed tail
      # pieces live on as separate blobs (689 alive cells).
      # Nor 64-step rollouts in 3500 steps (lr from 1000 / 2250 / 3000; session 17, 44 min,
      # 0.7-1.2 s/step): faster per step (validation MSE 0.0083 / 0.0053 / 0.0040 at 1750 /
      # 2500 / 3000, where this run needed 4750 steps for 0.0045), but the takeover was
      # less sure: original cells left in 1 to 9 of the 32 validation seeds from step 1500
      # (23-31/32 complete; original fraction 0.031 = one seed wholly original, its square
      # dead), whose N_old made the score pick step 1750 (score 0.0085): final 32 seeds
      # 32/32, MSE 0.0085, worst 0.016.
      # Nor the same with the weights' moving average (0.998 from step 1000; session 18, 47 min
      # beside another run): averaged validations 0.0058 / 0.0047 / 0.0054 / 0.0055 / 0.0052
      # / 0.0035 / 0.0045 (MSE) at 2000..3500, but 28-31 of 32 complete; the average at 2250
      # picked: final 32 seeds 30/32 complete, MSE 0.0052. Why the takeover is unsure (per
      # seed, validation seeds): our squares, this one's and the committed one's, lie dormant
      # (4-10 cells at age 40 in half the seeds, some until age 100), where the published
      # adversary's spread at once from every seed (61-189 cells at age 40); a dormant square
      # can die. Nothing charges an early takeover: N_old counts from age 150, and a rollout
      # from the injection (32 or 64 steps) ends before it.
      # Hence the authors' windows, reached from the injection: N_old from age 84 (as their
      # notebooks; lizard_red keeps 150) and rollouts of 64-96 steps (uniform; the authors'
      # 96), so the first rollout after the injection ends inside both loss windows and a
      # square that lies dormant is charged; in 3000 steps (lr 5e-4 / 1e-4 / 3e-5 from 1000 /
      # 2000 / 2600; the entries above: 5250, from 1000 / 3000 / 4250), with the weights'
      # moving average (0.998 from step 1000). Measured (results/lizard_no_tail, session 18,
      # 50 min beside another run, 1.0 s/step; the average at step 2750 picked): averaged
      # validations 0.0096 / 0.0068 / 0.0042 / 0.0024 / 0.0020 at 1250 / 1750 / 2000 / 2500 /
      # 2750, 32/32 from 1750; final 32 seeds 32/32 complete, MSE 0.0021 +- 0.0013 (worst
      # 0.0070; the published 0.0026 +- 0.0022, worst 0.0092), 487 alive (published 473);
      # original fraction 0.09 at age 100 (published 0.21): passes, the tail's stub gone.
      rollout_min=64, rollout_max=96, l2_start=84, steps=3000,
      lr_boundaries=(1000, 2000, 2600), lr_values=(2e-3, 5e-4, 1e-4, 3e-5),
      weight_average=0.998, weight_average_from=1000, eval_seeds=32)


def bug_to_butterfly():
  """Fig. 12 bottom: a bug turned into a butterfly (shape and colours change)."""
  return PAPER_ADVERSARY.replace(
      description='paper fig. 12: persistent bug -> butterfly, 2x2 square',
      original='paper/bug/persist', target='paper/images/butterfly', injection='square:2',
      adversary_init='random',  # the rule must change completely; a copy is no head start
      compare_with='paper/bug/virus/bug_persist_to_butterfly_squareside_2')


def _grow_to_persist(**kwargs):
  # Fig. 14: the organism decays after some steps; the adversary must keep the shape the
  # original reached at injection, so the target loss starts at age 20, long before the
  # organism decays (60..140 steps after injection). Otherwise the paper's common setting,
  # 'expired' pool and N_old from age 150 included: with 'worst' replacement, max_age 400 and
  # N_old from age 20 (lizard, 2000 steps) the adversary overgrew the organism as the static
  # one did with N_old from 64 (835 alive cells against the published 588, MSE 0.0259
  # against 0.0036 at age 500), and ages past 400 were never trained. Measured with this
  # setting (lizard, 4500 steps, 61 min; 32 seeds, the entry of 8e88c2e): complete
  # in 32 of 32 but still overgrown, 829 alive cells against the published 586, MSE 0.0256
  # against 0.0050; the takeover is slow (original fraction 0.51 / 0.16 at ages 100 / 200,
  # published 0.10 / 0.00), so the original's explosion (control: 930 / 1899 alive at ages
  # 200 / 500) starts before it is replaced.
  # N_old from age 84, the authors' setting, instead of 150: the takeover must end before the
  # original's own fate (the lizard explodes from ~140 steps after injection, the butterfly
  # vanishes ~60 after it, the firework explodes ~80 after it); the target loss from age 20
  # holds the shape while N_old acts, which it did not when both started at 64 (lizard_red).
  # Measured on the lizard (4500 steps, 49 min beside another run; 32 seeds,
  # the entry of 0256547): the takeover is faster (original fraction 0.25 / 0.01 at
  # ages 100 / 200, was 0.51 / 0.16) and the organism less overgrown: 722 alive cells (was
  # 829; published 586, band 469-703), MSE 0.0132 (was 0.0256; published 0.0050, bar
  # 0.0075). Still short of the bar. With N_old from 84 and l_outside 1e-3 (session 13) it
  # never took over (original fraction 0.9-1.0 through 1100 steps); with l_outside 1e-4
  # (session 14, 4500 steps, 37 min) the size is right but the MSE worse: 32/32, 636 alive
  # (in the band), MSE 0.0188 (median 0.014, worst 0.083): not kept.
  return PAPER_ADVERSARY.replace(l1_start=20, l2_start=84, steps=4500).replace(**kwargs)


def lizard_grow_to_persist():
  """Fig. 14 top: the growing lizard (decays near step 200) kept alive, from a 3x3 square."""
  return _grow_to_persist(
      description='paper fig. 14: growing lizard -> persistent, 3x3 square',
      original='paper/lizard/growing', target='paper/images/lizard', injection='square:3',
      compare_with='paper/lizard/virus/lizard_growing_to_persist_squareside_3',
      # The weights' moving average (0.998 per step from step 1000), validated on 32 seeds.
      # Measured (the entry of 8f8a774, session 16, 37 min beside another run; the
      # average at step 4000 picked, validation 0.022): 32/32, 691 alive cells (was 722: now
      # inside the band 469-703), MSE 0.0134 (was 0.0132; bar 0.0075): short of the bar on
      # the MSE only.
      weight_average=0.998, weight_average_from=1000, eval_seeds=32,
      # 64-step rollouts instead of the common 32 (the authors': 96), in 3500 steps (the
      # 1e-4 phase from 2500) instead of 4500: each step's gradient reaches over twice the
      # ages. Measured (the entry of 6e0694f, session 17, 55 min beside another run,
      # 0.94 s/step; the average at step 3000 picked): averaged validations 0.0196 / 0.0159 /
      # 0.0144 at 1750 / 2500 / 3000 (the 32-step run's best: 0.0221 at 4000); final 32 seeds
      # 32/32 complete, 664 alive (band 469-703), MSE 0.0093 (was 0.0134; the published
      # 0.0050, bar 0.0075): closer, still short of the bar on the MSE. (That entry and the
      # next: rollout_min=64, rollout_max=64, steps=3500, lr_boundaries=(1000, 2500).)
      # Every sample in the gradient (outlier_factor 0, as lizard_red): in the entry above the
      # seeds that fail are those whose square has barely spread by age 100 (original
      # fraction 0.96-0.98 in 2 of 32 seeds), after which the original explodes and the
      # adversary keeps the overgrowth (1107 alive, MSE 0.065); such a sample's N_old is far
      # above the batch mean, and the paper's outlier rule dropped it from the gradient.
      # Measured (the entry of 6851c69, session 18, 52 min beside another run,
      # 0.89 s/step; the average at step 2500 picked): averaged validations 0.0093 / 0.0072
      # / 0.0068 at 1500 / 2250 / 2500 (the entry above: 0.0144 at best); final 32 seeds
      # 32/32, 655 alive (band 469-703), MSE 0.0084 (bar 0.0075; median 0.0039, the
      # published 0.0050): the typical seed now better than the published adversary's, the
      # mean still over the bar by a few seeds: the two worst (MSE 0.051 / 0.038, 949 / 847
      # alive) are among the 5 of 32 whose square lay dormant to age 100 (original fraction
      # 0.88-0.98 then): a 64-step rollout from the injection ends before N_old (from 84).
      outlier_factor=0.0,
      # Rollouts of 64-96 steps (the authors' 96 at most), so that the first rollout after the
      # injection reaches N_old's window (from age 84) and charges a dormant square (as
      # lizard_no_tail), in 3000 steps (the 1e-4 phase from 2000). Measured
      # (results/lizard_grow_to_persist, sessions 18-19, 109 min mostly beside another run,
      # 1.2-2.2 s/step; the average at step 3000 picked): averaged validations 0.0121 / 0.0093
      # / 0.0078 / 0.0080 / 0.0059 / 0.0048 / 0.0048 / 0.0046 at 1250..3000 (the 64-step
      # entry's best 0.0068); final 32 seeds 32/32 complete, 615 alive (published 586; band
      # 469-703), MSE 0.0049 (published 0.0050, bar 0.0075; median 0.0038, worst 0.0136),
      # original fraction 0.09 at t+100 (published 0.10): passes.
      rollout_min=64, rollout_max=96, steps=3000, lr_boundaries=(1000, 2000))


def butterfly_grow_to_persist():
  """Fig. 14 middle: the growing (blue) butterfly kept alive, from a 3 % spray.

  Its target image was never published (SPEC section 4): the target is the organism itself as
  grown to the injection step ('self:60').
  """
  return _grow_to_persist(
      description='paper fig. 14: growing butterfly -> persistent, spray 3 %',
      original='paper/butterfly/growing', target='self:60', injection='spray:0.03',
      compare_with='paper/butterfly/virus/butterfly_growing_to_persist_virusrate_3%',
      # Trained on the grown organism without its faint halo (alpha < 0.3 emptied; the final
      # evaluation still measures against self:60 whole). The growing butterfly at step 60
      # has 986 cells of alpha > 0.1 on 8 organisms' mean (734 above 0.3): a halo its image
      # target did not have, since the published adversary keeps 819. Trained on self:60
      # whole (2500 steps, N_old from 150, 45 min): complete in 32 of 32, MSE 0.0059 (the
      # published 0.0102) but 1101 alive cells, outside the bar's 20 % of 819: the halo kept.
      # With the cut (results/butterfly_grow_to_persist, 3000 steps, 27 min beside another
      # run): 32 of 32, MSE to self:60 whole 0.0134 (bar 0.0153; median 0.011, the published
      # 0.010), 758 alive (band 655-983). 3 of 32 seeds break into pieces (MSE 0.023 / 0.041
      # / 0.058; seed 0, the strip's, is the worst): not covered by the dynamic bar.
      target_alpha_cut=0.3,
      # 3000 steps, the 1e-4 phase from 2000: the 2500-step run above was already at the MSE
      # bar (0.0059 against 0.0153), and a spray takes over at once.
      steps=3000, lr_boundaries=(1000, 2000))


def firework_grow_to_persist():
  """Fig. 14 bottom: the growing firework (explodes near step 140) kept, from a 50 % spray."""
  return _grow_to_persist(
      description='paper fig. 14: growing firework -> persistent, spray 50 %',
      original='paper/firework/growing', target='paper/images/firework', injection='spray:0.5',
      compare_with='paper/firework/virus/firework_growing_to_persist_virusrate_50%',
      # A random rule, not a copy: the published adversary is unrelated to the original
      # (cosine 0.000, |dw| 0.316; the other published adversaries 0.46-0.83), and a copy of
      # the exploding rule kept exploding: from a copy with N_old 1e-2 from age 84 (1000
      # steps, 8-seed validations at age 500): MSE 0.155 / 0.123 / 0.150 / 0.159 at 250 / 500
      # / 750 / 1000 steps, 1545-2304 alive (the published adversary on 8 other seeds: MSE
      # 0.003, ~1446 alive; the target 1444 cells); with N_old from 150 (1500 steps, session
      # 13) 0.077-0.218.
      adversary_init='random',
      # 3000 steps with the 1e-4 phase from 2000, as the butterfly (time: two runs at a time).
      # Measured (the entry of a32455d, 39 min of training beside another run;
      # best validated weights from step 2250): complete 32 of 32, 1558 alive (published
      # 1454, within the band), the control exploded (2299); MSE 0.037 (median 0.037, the
      # published 0.0065, bar 0.0098): the firework's shape kept, its rays blurred. Its
      # validations swung (0.154 / 0.254 / 0.084 / 0.137 / 0.099 / 0.134 / 0.078 / 0.263 /
      # 0.036 / 0.038 at 250..2500 steps, 8 seeds): short of the bar.
      steps=3000, lr_boundaries=(1000, 2000),
      # The weights' moving average (0.998 per step from step 1000) validated on 32 seeds and
      # exported: the raw weights' validations swing (above), the average's fall steadily
      # (0.098 / 0.072 / 0.050 / 0.032 / 0.030 / 0.029 / 0.028 at 1250..3000). Measured
      # (the entry of 8f8a774, session 16, 38 min beside another run; the average
      # at step 3000 picked): 32/32 complete, MSE 0.0278 (was 0.0371; the published 0.0065,
      # bar 0.0098), 1482 alive (published 1454). Better, still short of the bar.
      weight_average=0.998, weight_average_from=1000, eval_seeds=32,
      # 64-step rollouts instead of the common 32 (the authors': 96). Measured
      # (results/firework_grow_to_persist, session 17, 72 min beside another run, 1.44 s/step;
      # the average at step 3000 picked): validations (raw to 1000, then the average) 0.106 /
      # 0.100 / 0.085 / 0.060 / 0.062 / 0.049 / 0.048 / 0.029 / 0.029 / 0.028 / 0.024 / 0.021
      # at 250..3000, still falling at the end; final 32 seeds 32/32, 1463 alive, MSE 0.0220
      # (was 0.0278 with 32-step rollouts; bar 0.0098). Better, still short of the bar.
      # Tried (session 19, not kept): the target loss from age 64 (the paper's common window)
      # instead of 20, with 64-96-step rollouts: validations 0.045 / 0.039 / 0.037 / 0.035 /
      # 0.034 at 1000 / 1500 / 2000 / 2500 / 3000 (this entry's 0.060 / 0.049 / 0.029 / 0.028
      # / 0.021), final 32 seeds 32/32, MSE 0.035, 1611 alive: without the early target the
      # adversary overgrows through the takeover (2226-2303 alive at the first validations)
      # and keeps part of it.
      # Tried (sessions 19-20, not kept): pre-training (pretrain_steps=1000: the adversary
      # first owns every cell of the grown organism, the 100 % end of the authors' 97 % ->
      # 70 % -> 50 % curriculum), then the 50 % takeover (steps 4000, lr from 2000 / 3000,
      # the average from 2000). Pre-training learnt a crisp persistent firework (target loss
      # 0.005 by step 550), but the takeover did not profit: validations 0.635 (4/32
      # complete) / 0.117 / 0.258 (2267 alive, overgrown) at 250 / 500 / 750 takeover steps,
      # this entry's 0.106 / 0.100 / 0.085 at the same steps; stopped at step 1810.
      # Nor lizard_grow_to_persist's recipe, 64-96-step rollouts and outlier_factor 0 (session
      # 20, 1.9 s/step beside another run): validations 0.155 / 0.083 / 0.099 / 0.090 at 250
      # .. 1000, overgrown (2304-2112 alive), then the average's 0.066 / 0.045 / 0.043 / 0.039
      # at 1250 .. 2000 (this entry's 0.062 / 0.049 / 0.048 / 0.029); stopped at step 2100.
      # Nor a start from the published persistent firework (adversary_init=
      # 'from:paper/firework/persist', session 20, 3000 steps; the rest as this entry): it
      # already draws crisp rays, but injected as is it explodes in the growing rule's states
      # (max |x| 1e3 at t+100). Validations 0.144 / 0.134 / 0.101 / 0.070 at 250..1000, then
      # the average's 0.044 / 0.046 / 0.043 / 0.039 / 0.043 / 0.059 / 0.039 / 0.032 at
      # 1250..3000 (this entry's 0.062 / 0.049 / 0.048 / 0.029 / 0.029 / 0.028 / 0.024 /
      # 0.021): ahead to 1750, then stalled in the 1e-4 phase; final 32 seeds 32/32, 1569
      # alive, MSE 0.038, |dw| to the growing firework 0.243, cosine 0.015.
      # Nor a continuation of this entry (adversary_init='from:results/firework_grow_to_persist',
      # lr 2e-4 / 1e-4 / 5e-5 from 1000 / 2000, the average from step 100; session 21, stopped
      # at ~1850 of 3000): validations 0.033 / 0.024 / 0.025 / 0.020 / 0.022 / 0.021 / 0.019 at
      # 250..1750, falling ~0.001 per 250 steps.
      # Nor the authors' curriculum in two stages (session 22, one thread beside another run,
      # 0.8 s/step): a spray of 80 % first (injection='spray:0.8', 1500 steps, lr from 1000 /
      # 1250; 20 min): validations 0.163 / 0.239 (2304 alive) / 0.071 / ... / 0.0161 at 250 /
      # 500 / 750 / 1500, final 32 seeds at 80 % 32/32, MSE 0.017 (the published adversary
      # sprayed at 80 %: 0.0034); then 50 % from those weights (lr 5e-4 / 1e-4 from 1000, the
      # average from 250, 2000 steps; 26 min): validations 0.036 / 0.036 / 0.040 / 0.027 /
      # 0.028 / 0.023 / 0.028 / 0.020 at 250..2000; final 32 seeds 32/32, 1460 alive, MSE 0.0204
      # (median 0.019; this entry's 0.0220, bar 0.0098), 0.060 / 0.023 at t+100 / t+200. The
      # rays stay blurred even at 80 %, where the takeover is easy: what is missing is the
      # drawing, not the takeover.
      rollout_min=64, rollout_max=64,
      # N_old from age 20 (with the target loss), not 84: the published adversary has
      # removed every original cell by age 40 (its strip at 80 %; original fraction 0.000 at
      # t+100 at 50 %), before the growing rule starts to explode (~80 steps after the
      # injection); ours, with N_old from 84, still held 6 % original cells at t+100, whose
      # explosion scrambled the drawing it then had to redraw: that, not the drawing itself,
      # is what blurred the rays above. Measured (results/firework_grow_to_persist, session
      # 23, 38 min beside another run, 0.75 s/step; the average at step 3000 picked):
      # validations 0.200 (2304 alive) / 0.068 / 0.032 / 0.035 at 250..1000, then the
      # average's 0.019 / 0.023 / 0.013 / 0.014 / 0.016 / 0.010 / 0.0089 / 0.0084 at
      # 1250..3000 (the entry above: 0.062 / 0.049 / 0.048 / 0.029 / 0.029 / 0.028 / 0.024 /
      # 0.021); final 32 seeds 32/32 complete, original fraction 0.000 from t+100 (as the
      # published), 1443 alive (published 1454, the target 1444), MSE 0.0062 (published
      # 0.0065, bar 0.0098; median 0.0056, worst 0.028), |dw| to the growing firework 0.203,
      # cosine -0.007 (published 0.316 / 0.000): passes. From age 40 (same run otherwise,
      # stopped at 1480): 0.100 / 0.097 / 0.061 / 0.158 at 250..1000, the average's 0.076 at
      # 1250 (this entry's 0.019). From age 0 (the whole run): the adversary learnt to make
      # the original's alpha negative: N_old, the plain sum of that alpha (as in the paper's
      # code), went to -0.6 per step and the total loss below 0, and the firework overgrew
      # the grid (2303 alive, MSE 0.061 at the end).
      l2_start=20)


# Fig. 15: the perturbation regimes, green -> red lizard from a spray, with or without the
# l3 d(w_adv, w_orig) penalty, from a random or a copied adversary. The sweep
# (tools.reproduce --experiments=perturbation, tools.perturbation_sweep) varies the spray rate
# over PERTURBATION_RATES.
PERTURBATION_RATES = (0.8, 0.5, 0.25, 0.05)  # the injected shares of the paper's plot


def _perturbation(init, l3):
  config = lizard_red().replace(
      description=f'paper fig. 15: lizard -> red, spray, init={init}, l3={l3:g}',
      injection='spray:0.1', adversary_init=init, l3=l3,
      # The paper trains each until the loss is below 0.01 ("visually indistinguishable"),
      # read here on the validations (every 250 steps, age 500: see stop_loss, eval_seeds);
      # 2500 steps is the cap (a run that reaches it records so: metrics.json stopped_early).
      stop_loss=0.01, steps=2500,
      # lizard_red's schedule, its low-lr phase from 1500 instead of 3000: the age-500 MSE
      # drops in that phase, not before (the 10 % spray, lizard_red_spray: validation 0.048 at
      # step 3000 at lr 5e-4, 0.014 250 steps into 1e-4), and 16 cells at lizard_red's 4500
      # steps would be ~15 h on this machine.
      lr_boundaries=(1000, 1500),
      # N_old from age 84, the authors' spray setting, instead of lizard_red's 150 (kept there
      # because a square learnt to overgrow when N_old counted from 64): a spray takes over
      # at once, and its last original cells are what fails the bar. From 150 (copy init,
      # l3 = 0.01, 80 %, 2500 steps, session 6): 27 of 32 complete at age 500, the others
      # keeping 1-4 original cells of ~650 (original fraction 0.05 at age 100).
      l2_start=84,
      # Validation on the final evaluation's 32 seeds (the best weights and the loss criterion
      # are judged on them): on 8 seeds the cell above looked complete (0.000) where 5 of 32
      # were not; ~20 s per validation.
      eval_seeds=32,
      # Penalised regimes (l3 > 0, below): l3_distance 'norm' (the L2 norm of w_adv - w_orig),
      # not SPEC's 'rms'. With 'rms' the penalty barely acts: per parameter its gradient is
      # l3 / 8336 ~ 1e-6, against ~3e-4 from the target loss, so |dw| is set by Adam's drift
      # over the steps. Measured with 'rms' (sessions 6-7, 2500 steps, all at the cap; in git
      # history): copy_l3 |dw| 0.076 / 0.076 / 0.081 at 80 / 50 / 25 %, cosine 0.92 / 0.92 /
      # 0.91 (paper 0.05 / 0.067 / 0.074, 0.96 / 0.93 / 0.92), and random_l3 cosine 0.29 /
      # 0.28 / 0.52 (paper 0.97 / 0.96 / 0.93). The same schedule as the unpenalised regimes,
      # so that the penalty is the only difference: with 'norm' and 1000 steps (lr from 500 /
      # 750) the adversaries overgrew, the shape never repaired in the low-lr phase: random_l3
      # 80 % (session 7) |dw| 0.060, cosine 0.949, MSE 0.037, 1032 alive cells (the lizard
      # ~600); random_l3 5 %: |dw| 0.120, cosine 0.77 (paper 0.10 / 0.83), MSE 0.038, 1047
      # alive; copy_l3 5 %: |dw| 0.0075, cosine 0.999, and the grid filled (2304 alive from
      # step 250 on, MSE 0.068): a tiny change of the rule that undoes the growth's stop
      # (session 8). At 2500 steps with l2 1e-2 (below; 80 %, session 8): complete 32/32 for
      # both, but overgrown and far from the paper's final loss (0.004-0.007): copy_l3 |dw|
      # 0.006, cosine 0.9995 (paper 0.05 / 0.96), MSE 0.036, 886 alive; random_l3 |dw| 0.078,
      # cosine 0.911 (paper 0.044 / 0.97), MSE 0.055, 1177 alive. 'norm' at l3 = 0.01 holds
      # a copy on the original; the paper's |dw| lies between what 'rms' and 'norm' give.
      # The authors' l3 is 'rms' (`ruler.distance` in LetteraUnica/neural_cellular_automata,
      # added once per rollout to every sample's loss), and it passed no gradient until their
      # commit 80c4a7b "Fixed ruler not computing gradients" (2022-02-18: the parameters were
      # read through `.data`), five days before fig. 15's plot (5a78031, 2022-02-23); the sweep's
      # training script is not in their repository, so how their random init got to cosine
      # 0.97 with it is not known.
      # l3 stays the paper's 0.01: with 'norm' at l3 = 0.001 (80 %, 2500 steps, session 9)
      # the copy lands nearer the paper (|dw| 0.026, cosine 0.990, MSE 0.027, 783 alive, 31/32
      # complete) but the random init is no longer pulled to the original (|dw| 0.174,
      # cosine 0.367 against the paper's 0.97; MSE 0.055, 975 alive, 32/32), and the MSE is
      # no better: l3 is not what overgrows the penalised cells.
      # With the penalty, a random init's |dw| is set by how long the penalty has acted more
      # than by the rate: it falls all through the run (1 - cosine at steps 250 / 750 / 1000 /
      # 1500 / 2000 / 2500, session 10: 25 % 0.84 / 0.34 / 0.09 / 0.04 / 0.030 / 0.024; 50 %
      # 0.85 / 0.45 / 0.27 / 0.17 / 0.154), at a pace that differs between runs (80 %: 0.089 at
      # its best step 1750, 25 %: 0.035 there), so the best-validated step picks |dw|. With
      # 32-step rollouts the 25 % cell contradicted fig. 15's claim that |dw| grows as the
      # injected share falls (until session 22: below): session 12's run (32/32, MSE 0.042,
      # 1037 alive, |dw| 0.0425, cosine 0.973, best step 2250) and session 13's (another
      # machine: 32/32, MSE 0.036, 853 alive, |dw| 0.025, cosine 0.991, best step 2500) both
      # end below the 80 % cell's 0.078; the paper's random_l3 |dw| 0.044 / 0.04 / 0.06 / 0.10
      # (80 / 50 / 25 / 5 %) is nearly flat to 25 % too. The copy_l3 50 %
      # cell filled the grid (2304 alive, MSE 0.082, |dw| 0.007, best step 500), random_l3 50 %
      # nearly (1837 alive, MSE 0.062); copy_l3 25 % / 5 % overgrew too (1411 / 1786 alive,
      # MSE 0.054 / 0.066, |dw| 0.0085 / 0.0098, best step 2250 of 2500 both). The overgrowth
      # penalty did not help a random init: random_l3 25 % with l_outside=1e-3 (2500 steps)
      # diverged near step 500 (loss 8.6e4) and ended shrunk, 187 alive, MSE 1.43.
      # The only published perturbation adversary is the 10 % one: no comparison per rate.
      compare_with='')
  if l3 > 0:  # see the comment on the penalised regimes above
    config = config.replace(l3_distance='norm')
  if init == 'copy' or l3 > 0:
    # N_old weighted 1e-2, not 1e-3, where the adversary stays close to the original. An
    # original cell whose alpha is the largest is updated by the original rule only (SPEC
    # 3.1): the adversary can kill it only through what its neighbours show the original
    # rule, and a rule close to the original shows it a lizard, so single original cells
    # live on (a random rule's foreign states kill them: 32/32 at 80 / 50 / 25 % with 1e-3).
    # With 1e-3 one such cell costs l2 = 1e-3 against a target loss ~0.015. Measured
    # (2500 steps, 32 seeds, session 8): copy 80 %: 29/32 complete, MSE 0.008 (1e-3,
    # stopped on stop_loss at 2000) -> 32/32 at every validation from step 1250 and in the
    # final evaluation, MSE 0.021, |dw| 0.113, cosine 0.834 (1e-2); copy 50 % with 1e-3:
    # 29/32, MSE 0.016; random_l3 80 % ('norm') with 1e-3: 29/32, MSE 0.036, |dw| 0.0086,
    # cosine 0.999 (the penalty pulled it onto the original).
    config = config.replace(l2=1e-2)
  # Rollouts of 64-96 steps and the weights' average (0.998 from step 1000), in every regime
  # but copy_l3. Retrained cell by cell (sessions 19-22) with these as overrides (`--set=
  # rollout_min=64 --set=rollout_max=96 --set=weight_average=0.998
  # --set=weight_average_from=1000`, recorded in each cell's run.json), and folded in here
  # once a regime's four cells all had them, so that `tools.reproduce --experiments=
  # perturbation` names the committed cells' configs. copy_l3's four cells are still the
  # 32-step ones (REPORT.md's settings table): retrain them together with the overrides, then
  # drop the exception. Why: lizard_no_tail's finding, the first rollout after the injection
  # reaches N_old (from 84).
  # Measured on copy 80 % (session 19, 18 min beside another run): stopped on the loss
  # criterion at step 1000 (validation 0.0094), 32/32, MSE 0.0092, |dw| 0.095, cosine 0.878
  # (paper 0.078 / 0.91, loss 0.004), where the 32-step cell ran to the 2500 cap at MSE 0.021
  # (|dw| 0.113, cosine 0.834). Session 20 (beside another run, 1.2-1.9 s/step): copy 50 %
  # stopped at 1250 (MSE 0.0099), copy 25 % ran to the cap (validation 0.0105, MSE 0.0096,
  # 32/32; was 0.024, 31/32), random 80 % / 50 % stopped at 1250 / 1750 (MSE 0.0075 / 0.0081; were
  # 0.017 / 0.017 at the cap). Session 21 committed session 20's random 25 % (to the cap:
  # validation 0.0126, 31/32, MSE 0.0123, |dw| 0.224, cosine 0.001; was MSE 0.015, 32/32):
  # one seed less complete, still at the bar, for one recipe across the regime.
  # Not enough for the penalised regimes: random_l3 25 % ran to the cap at MSE 0.029 (was
  # 0.036), still overgrown (800 alive; the lizard ~600), |dw| 0.018, cosine 0.995. Random_l3
  # 80 % (session 21, 47 min beside another run): to the cap, validation 0.0251 (average at
  # 2500), 32/32, MSE 0.025 (was 0.055), 747 alive (was 1177), |dw| 0.010, cosine 0.998 (was
  # 0.078 / 0.911; paper 0.044 / 0.97): the penalty now pulls the random init onto the
  # original at 80 % too (|dw| 0.049 / 0.017 / 0.012 at steps 500 / 1000 / 1500). Random_l3
  # 50 % (session 22, 28 min beside another run, 0.68 s/step): to the cap, validation 0.0268
  # (average at 2500), 32/32, MSE 0.027, 696 alive, |dw| 0.016, cosine 0.996 (was 0.100 /
  # 0.846): with 80 / 50 / 25 % on this recipe (0.010 / 0.016 / 0.018) random_l3's |dw|
  # grows as the share falls, as fig. 15 claims (report.NOT_REPRODUCED emptied). Random_l3
  # 5 % (session 22, 34 min beside another run): to the cap, overgrown in the 2e-3 phase
  # (2304 alive at step 500), then the average's validations 0.046 / 0.039 / ... / 0.0308 at
  # 1250 / 1500 / 2500; 32/32, MSE 0.030 (was 0.055), 814 alive (was 1060), |dw| 0.024,
  # cosine 0.992 (was 0.153 / 0.540; paper 0.10 / 0.83). The whole regime on this recipe:
  # |dw| 0.010 / 0.016 / 0.018 / 0.024 at 80 / 50 / 25 / 5 % (the paper's 0.044 / 0.04 /
  # 0.06 / 0.10): the order claimed, each a quarter to a half of the paper's. Copy 5 %
  # (session 22, 28 min beside another run): the average's validation 0.0095 at the 2500
  # cap (the loss criterion met at the last step), 32/32, MSE 0.0094, |dw| 0.103, cosine
  # 0.853 (the 32-step cell: stopped at 1750, MSE 0.0078, |dw| 0.108, cosine 0.844; paper
  # 0.17 / 0.68): the copy regime on one recipe, |dw| 0.095 / 0.097 / 0.100 / 0.103 from 80
  # to 5 %, rising as the paper's (0.078 / 0.091 / 0.13 / 0.17) but flatter. Random 5 %
  # (session 22, 26 min beside another run): to the cap, validation 0.0136 (average at 2250),
  # 32/32, MSE 0.0126 (was 0.0174), |dw| 0.225, cosine 0.010 (paper 0.30 / 0.009).
  # copy_l3 (|dw| 0.006-0.010) keeps the 32-step recipe until its four cells are retrained
  # together: one alone would compare recipes within the regime's |dw| claim.
  if not (init == 'copy' and l3 > 0):
    config = config.replace(rollout_min=64, rollout_max=96, weight_average=0.998,
                            weight_average_from=1000)
  return config


def perturbation_random_l3():
  """Fig. 15 regime 1: random initialisation, l3 = 0.01."""
  return _perturbation('random', 0.01)


def perturbation_copy_l3():
  """Fig. 15 regime 2: the adversary starts as the original, l3 = 0.01."""
  return _perturbation('copy', 0.01)


def perturbation_copy():
  """Fig. 15 regime 3: the adversary starts as the original, l3 = 0."""
  return _perturbation('copy', 0.0)


def perturbation_random():
  """Fig. 15 regime 4: random initialisation, l3 = 0."""
  return _perturbation('random', 0.0)


PERTURBATION_REGIMES = ('perturbation_random_l3', 'perturbation_copy_l3', 'perturbation_copy',
                        'perturbation_random')


def testing(config):
  """A tiny variant of `config` for tests: a 24x24 grid, 2 samples, a few short steps."""
  return config.replace(
      grid_size=24, batch_size=2, pool_size=4, rollout_min=4, rollout_max=4, inject_min=20,
      inject_max=20, l1_start=2, l2_start=2, steps=6, lr_boundaries=(4,),
      lr_values=config.lr_values[:2], checkpoint_every=2,
      summary_every=1, image_every=3, log_every=1, eval_seeds=2, eval_steps=12, max_age=20,
      test_seeds=4,
      eval_every=3, pretrain_steps=min(config.pretrain_steps, 2), compare_with='',
      # The weights' average, where the config keeps one, from the first validation on.
      weight_average_from=min(config.weight_average_from, 3),
      injection='spray:0.2' if config.injection.startswith('square:3') else config.injection,
      # A warm start needs its model; the tiny variants start from a copy of the original.
      adversary_init='copy' if config.adversary_init.startswith('from:') else
      config.adversary_init)


CONFIGS = {
    f.__name__: f for f in (
        lizard_red, lizard_red_spray, lizard_no_tail, bug_to_butterfly, lizard_grow_to_persist,
        butterfly_grow_to_persist, firework_grow_to_persist, perturbation_random_l3,
        perturbation_copy_l3, perturbation_copy, perturbation_random)
}

# The paper's experiments and the bar each is held to (`zoo.verdict`): fig. 12 changes the colour
# or the shape ('static'), fig. 14 keeps a growing organism alive ('dynamic').
EXPERIMENTS = {
    'lizard_red': 'static',  # fig. 12 top
    'lizard_red_spray': 'static',  # the 10 % spray variant
    'lizard_no_tail': 'static',  # fig. 12 middle
    'bug_to_butterfly': 'static',  # fig. 12 bottom
    'lizard_grow_to_persist': 'dynamic',  # fig. 14
    'butterfly_grow_to_persist': 'dynamic',
    'firework_grow_to_persist': 'dynamic',
}


def bar_kind(name):
  """The bar of config `name` (a `_testing` variant: its experiment's): 'static', 'dynamic' or
  'perturbation' (fig. 15's regimes); 'static' for a config outside the paper's."""
  name = name[:-len('_testing')] if name.endswith('_testing') else name
  if name in PERTURBATION_REGIMES:
    return 'perturbation'
  return EXPERIMENTS.get(name, 'static')
