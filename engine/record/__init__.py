"""Recording populations trained by the user's own code (docs/recording.md).

- :mod:`engine.record.recorder`: :func:`open_recorder` and :class:`Recorder`, for any loop;
- :mod:`engine.record.evaluate`: a model's outputs on a split, batched, without gradients;
- :mod:`engine.record.callbacks`: what the callbacks share (the splits, a fit's checkpoints);
- :mod:`engine.record.lightning`: a Lightning ``Callback`` (extra ``created-equal[lightning]``);
- :mod:`engine.record.transformers`: a Hugging Face ``TrainerCallback``
  (extra ``created-equal[transformers]``).

The callbacks are imported from their modules, so that this package needs neither library.
"""

from engine.record.recorder import RUN_NETWORK_BLOCK, Recorder, StoreLayout, open_recorder

__all__ = ["RUN_NETWORK_BLOCK", "Recorder", "StoreLayout", "open_recorder"]
