"""vtkit: a research kit for the VibeThinker Spectrum-to-Signal pipeline and the
compression-coverage probes. The notebooks in `notebooks/` call these modules, in pipeline order:

models, tokenizer       tiny Qwen2 ladder, SmolLM2-135M offline, hub ids and paths -> (model, tokenizer)
tasks, evalsets, facts  verifiable generated tasks, benchmark loaders, offline country facts (one record schema)
hubdata                 the paper presets' training data from the hub (math, code), decontaminated, same schema
verify, sandbox         answer extraction and equivalence; code tests in an isolated subprocess
evaluation, metrics     THE evaluation path (task sets, protocols, grading, EvalResult); pass@k, bootstrap
judge                   an LLM judge beside math-verify
generate, train         batched sampling; SFT through trl with the reports' schedule, the quick SFT start,
                        the capacity probe's plain next-token loop (train_lm)
spectrum                Spectrum: curriculum filters, checkpoint scoring, specialist selection, merging
rewards, rl, rl_phase      Signal: reward registry; the MGPO trainer; one RL phase with its curves
distill                 offline self-distillation: verified traces, learning potential, band selection
ifeval_checks           IFEval's constraint checkers (its 25 ids, plus vtkit's 3)
instructions, reward_model   instruction prompts for SFT/RL, the rule reward; the rubric reward model
ifeval, grade           IFEval's files and four metrics; `vtkit grade` for generations made elsewhere
clr                     Claim-Level Reliability at test time
capacity, corpora       the capacity probe: bits, accuracy and metrics; its training corpora (trainer: train.train_lm)
family, fits, figures   the family probe, curve fits, the paper figures
presets, runinfo, plots preset resolution, run records, the figure style
experiment, sweep, notebook, report, cli   the batch layer: YAML experiments, papermill sweeps, reports, `vtkit`
"""
__version__ = "0.1.0"
