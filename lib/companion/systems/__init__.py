"""Systems co-design (CubicML): a configuration space for training a small DLRM-like model on one or more CPU
processes (:mod:`.space`), a measurement harness that keeps a torchrun process group alive and is fed
configurations (:mod:`.harness`), an analytic cluster model for the scale no laptop has (:mod:`.cluster`,
constants in :mod:`.constants`), and the comparison of searchers on live measurements (:mod:`.search`)."""
