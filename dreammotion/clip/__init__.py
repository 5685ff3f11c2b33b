"""dreammotion-shapes-clip: a small video-text dual encoder trained on the synthetic renderer's clips.

A transformers ``CLIPModel`` (vision tower over 32x32 RGB images, text tower over the captions'
word-level tokenizer) saved with its tokenizer and ``CLIPImageProcessor``, so that
``dreammotion.metrics.clip.load_clip(folder)`` loads it by path like any CLIP checkpoint. It is a
domain model for the synthetic shapes world only; numbers computed with it are named for it
(``MODEL_NAME``), never reported as OpenAI CLIP.

- ``model``: presets, building, saving and loading the folder;
- ``inputs``: the motion image (how a single-image tower sees direction), the training
  degradations, the pixel normalisation shared with the image processor;
- ``train``: ``python -m dreammotion.clip.train`` (contrastive training on clips rendered on the fly);
- ``accuracy``: ``python -m dreammotion.clip.accuracy`` (zero-shot accuracy and the model card).
"""

MODEL_NAME = "dreammotion-shapes-clip"
