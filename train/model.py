"""The denoising autoencoder: the classic 28x28 conv design, widths as parameters."""

from __future__ import annotations


def build_model(patch: int = 28, width: int = 32, latent_width: int | None = None,
                skips: bool = False):
    """Conv(w) -> MaxPool2 -> Conv(w) -> MaxPool2 -> [P/4 x P/4 x latent] -> Conv ->
    Up2 -> Conv -> Up2 -> Conv(1, sigmoid). Input and output: (N, P, P, 1) in [0, 1],
    white = 1. ``patch`` must be a multiple of 4.

    ``skips=True`` adds each encoder feature map to the decoder map of the same
    resolution (U-Net style, by addition so it costs no extra convolution): the
    decoder then gets stroke positions at full resolution instead of re-deriving
    them from the pooled latent.
    """
    import keras
    from keras import layers

    if patch % 4:
        raise ValueError(f"patch must be a multiple of 4, got {patch}")
    lw = latent_width or width
    inp = keras.Input((patch, patch, 1), name="noisy")
    e1 = layers.Conv2D(width, 3, activation="relu", padding="same")(inp)
    x = layers.MaxPooling2D(2, padding="same")(e1)
    e2 = layers.Conv2D(lw, 3, activation="relu", padding="same")(x)
    x = layers.MaxPooling2D(2, padding="same", name="latent")(e2)
    x = layers.Conv2D(lw, 3, activation="relu", padding="same")(x)
    x = layers.UpSampling2D(2)(x)
    if skips:
        x = layers.Add()([x, e2])
    x = layers.Conv2D(width, 3, activation="relu", padding="same")(x)
    x = layers.UpSampling2D(2)(x)
    if skips:
        x = layers.Add()([x, e1])
    out = layers.Conv2D(1, 3, activation="sigmoid", padding="same", name="clean")(x)
    return keras.Model(inp, out, name="ocr_denoiser")
