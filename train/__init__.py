"""Training and export of the ocr-denoise model (needs the 'train' extra: TensorFlow, tf2onnx).

Run ``python -m train --help``.
"""
