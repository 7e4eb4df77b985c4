"""vtkit: a research kit for the VibeThinker Spectrum-to-Signal pipeline and the
compression-coverage probes. The notebooks in `notebooks/` call these modules:

models, tokenizer   tiny Qwen2 ladder, SmolLM2-135M offline, hub ids and paths -> (model, tokenizer)
tasks, evalsets     verifiable generated tasks and benchmark loaders in one record schema
verify, sandbox     answer extraction and equivalence; code tests in an isolated subprocess
rewards, metrics    trl reward functions; pass@k, mean@k, cons@k, bootstrap intervals
generate, train     batched sampling; SFT through trl with the reports' schedule
spectrum            curriculum filters, checkpoint scoring, specialist selection, merging
rl, distill         MGPO (GRPOTrainer subclass), Long2Short, learning-potential selection
instructions        IFEval-style verifiable constraints; judge, clr: LLM judge and CLR
protocols           the reports' evaluation settings and `evaluate`
capacity, fits,     knowledge bits, logistic/power-law fits, offline facts,
facts, probes       and the probes' shared code
presets, runinfo    preset resolution and run records; experiment, sweep, report, plots, cli
"""
__version__ = "0.1.0"
