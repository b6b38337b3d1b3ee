"""Training one run: ``train(run_cfg, run_dir=None)`` in :mod:`scalinglab.train.run`.

config (what a run is), budget (its length in steps), lr_rules and schedules (its learning rate),
trainer (the loop), checkpoint and rundir (its files), distributed (torchrun), noise_scale and
mirrors (optional measurements and trackers).
"""
