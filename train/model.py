"""The denoisers: the classic 28x28 conv autoencoder, widths as parameters; a cheaper
variant that does its full-resolution work with pixel (un)shuffles; and the residual
model that starts as the identity (``build_residual``)."""

from __future__ import annotations

ARCHES = ("classic", "shuffle", "residual")
#: Names of the context branch's layers start so (``grow_context`` tells them apart).
CONTEXT_PREFIX = "context_"


def build_model(patch: int = 28, width: int = 32, latent_width: int | None = None,
                skips: bool = False, arch: str = "classic", decoder_width: int = 0,
                output_kernel: int = 3, refine: int = 0, context_width: int = 0,
                separable_output: bool = False):
    """Input and output: (N, P, P, 1) float32 in [0, 1], white = 1; ``patch`` a multiple of 4.

    ``arch="classic"``: Conv(w) -> MaxPool2 -> Conv(w) -> MaxPool2 -> [P/4 x P/4 x latent]
    -> Conv -> Up2 -> Conv -> Up2 -> Conv(1, sigmoid), the tutorials' design.
    ``skips=True`` adds each encoder feature map to the decoder map of the same
    resolution (U-Net style, by addition so it costs no extra convolution): the
    decoder then gets stroke positions at full resolution instead of re-deriving
    them from the pooled latent.

    ``arch="shuffle"``: the same two halvings down to a P/4 x P/4 x w latent, but no
    layer runs at full resolution. A 4x4 stride-2 convolution replaces Conv+MaxPool
    at the first level, and the output is a 4-channel P/2 x P/2 map rearranged into
    P x P (depth-to-space, as in ESPCN super-resolution). Why: onnxruntime spends
    two thirds of the classic model's time in the full-resolution layers (the
    32->1 output convolution alone is 31%, at 8 GFLOP/s against 140 for the
    P/2 convolutions), so removing them makes the model about 4x faster; the skip
    from the first level is always on. ``decoder_width`` > 0 adds a Conv at P/2
    before the output; ``output_kernel`` is the size of that last convolution.
    ``separable_output`` makes it depthwise-separable (a per-channel k x k convolution,
    then a 1 x 1 one to the 4 outputs): onnxruntime computes convolutions in blocks of
    16 output channels on AVX-512, so the plain one's 4 outputs cost what 16 would.
    ``refine`` > 0 adds a small full-resolution head: the upsampled output and the
    input, through Conv(refine, relu) and Conv(1), a residual on the logits.
    ``context_width`` > 0 (shuffle only) adds a second input, ``context``: the
    page around the patch at a quarter of the resolution (``ocr_denoise.context``,
    P x P covering 4P x 4P pixels), through two stride-2 Conv(context_width, relu)
    down to P/4 x P/4 and concatenated to the latent. Why: whether the page is
    speckled, blurred or shows text from the back, and whether a dark blob goes
    on into a stain, are outside the patch (measurements: the model card's
    "Page context").
    """
    import keras
    from keras import layers

    if patch % 4:
        raise ValueError(f"patch must be a multiple of 4, got {patch}")
    if arch not in ARCHES:
        raise ValueError(f"arch must be one of {ARCHES}, got {arch!r}")
    if context_width and arch != "shuffle":
        raise ValueError("context_width needs arch='shuffle'")
    if arch == "residual":
        return build_residual(patch, width, latent_width or 2 * width)
    lw = latent_width or width
    inp = keras.Input((patch, patch, 1), name="noisy")
    if arch == "shuffle":
        e1 = layers.Conv2D(width, 4, strides=2, activation="relu", padding="same")(inp)
        x = layers.MaxPooling2D(2, padding="same", name="latent")(e1)
        inputs = [inp]
        if context_width:
            ctx = keras.Input((patch, patch, 1), name="context")
            inputs.append(ctx)
            c = layers.Conv2D(context_width, 3, strides=2, activation="relu", padding="same",
                              name=f"{CONTEXT_PREFIX}conv1")(ctx)
            c = layers.Conv2D(context_width, 3, strides=2, activation="relu", padding="same",
                              name=f"{CONTEXT_PREFIX}conv2")(c)
            x = layers.Concatenate()([x, c])
        x = layers.Conv2D(lw, 3, activation="relu", padding="same")(x)
        x = layers.Conv2D(width, 3, activation="relu", padding="same")(x)
        x = layers.UpSampling2D(2)(x)
        x = layers.Add()([x, e1])
        if decoder_width:
            x = layers.Conv2D(decoder_width, 3, activation="relu", padding="same")(x)
        h = patch // 2
        # channel 2a+b -> pixel (2i+a, 2j+b)
        if separable_output:
            x = layers.SeparableConv2D(4, output_kernel, padding="same")(x)
        else:
            x = layers.Conv2D(4, output_kernel, padding="same")(x)
        x = layers.Reshape((h, h, 2, 2))(x)
        x = layers.Permute((1, 3, 2, 4))(x)
        x = layers.Reshape((patch, patch, 1))(x)
        if refine:
            r = layers.Concatenate()([x, inp])
            r = layers.Conv2D(refine, 3, activation="relu", padding="same")(r)
            x = layers.Add()([x, layers.Conv2D(1, 3, padding="same")(r)])
        out = layers.Activation("sigmoid", name="clean")(x)
        return keras.Model(inputs if context_width else inp, out, name="ocr_denoiser")
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


#: Name of the residual model's last convolution, the one that starts at zero.
CORRECTION = "correction"


def _space_to_depth(x, patch: int):
    """(N, P, P, 1) -> (N, P/2, P/2, 4), channel 2a+b = pixel (2i+a, 2j+b): lossless,
    every pixel kept; the inverse of the shuffle arch's output rearrangement."""
    from keras import layers

    h = patch // 2
    x = layers.Reshape((h, 2, h, 2))(x)
    x = layers.Permute((1, 3, 2, 4))(x)
    return layers.Reshape((h, h, 4))(x)


def _depth_to_space(x, patch: int, prefix: str | None = None):
    """(N, P/2, P/2, 4) -> (N, P, P, 1), the inverse of :func:`_space_to_depth`.
    ``prefix`` names its layers (a model that grows a second one needs unique names)."""
    from keras import layers

    def named(part: str) -> dict[str, str]:
        return {} if prefix is None else {"name": f"{prefix}_{part}"}

    h = patch // 2
    x = layers.Reshape((h, h, 2, 2), **named("blocks"))(x)
    x = layers.Permute((1, 3, 2, 4), **named("order"))(x)
    return layers.Reshape((patch, patch, 1), **named("page"))(x)


def build_residual(patch: int = 28, width: int = 24, side_width: int = 48):
    """Input and output: (N, P, P, 1) float32 in [0, 1], white = 1; ``patch`` a
    multiple of 4. Output = clip(input + correction, 0, 1).

    The page goes in whole: its 2x2 pixel blocks become 4 channels at P/2 x P/2
    (space-to-depth, which drops nothing, unlike pooling), three 3x3 convolutions of
    ``width`` work there, and a side path at P/4 (a stride-2 convolution and one
    more, ``side_width`` wide, upsampled and added) sees about twice as far: whether
    a grey area is paper texture or a faint letter. The last convolution
    (``CORRECTION``) makes 4 channels, rearranged back to P x P (depth-to-space),
    and its weights and bias start at zero, so an untrained model returns its input
    unchanged: the model can only learn to depart from the page, never has to learn
    to redraw it. Why not the autoencoder: its 7x7 bottleneck makes it redraw every
    letter, and the redrawn letters came out bold (issue "A denoiser that helps real
    pages")."""
    import keras
    from keras import layers

    if patch % 4:
        raise ValueError(f"patch must be a multiple of 4, got {patch}")
    inp = keras.Input((patch, patch, 1), name="noisy")
    x = _space_to_depth(inp, patch)
    f = layers.Conv2D(width, 3, activation="relu", padding="same")(x)
    f = layers.Conv2D(width, 3, activation="relu", padding="same")(f)
    s = layers.Conv2D(side_width, 3, strides=2, activation="relu", padding="same")(f)
    s = layers.Conv2D(side_width, 3, activation="relu", padding="same")(s)
    s = layers.UpSampling2D(2)(s)
    s = layers.Conv2D(width, 1, padding="same")(s)
    f = layers.Activation("relu")(layers.Add()([f, s]))
    f = layers.Conv2D(width, 3, activation="relu", padding="same")(f)
    c = layers.Conv2D(4, 3, padding="same", kernel_initializer="zeros",
                      bias_initializer="zeros", name=CORRECTION)(f)
    out = layers.Add()([inp, _depth_to_space(c, patch)])
    out = layers.ReLU(max_value=1.0, name="clean")(out)
    return keras.Model(inp, out, name="ocr_denoiser")


def scale_correction(model, lighten: float = 1.0, darken: float = 1.0):
    """A copy of a trained residual ``model`` (:func:`build_residual`) whose correction
    is split by sign and scaled: where it lightens a pixel times ``lighten``, where it
    darkens one times ``darken`` (1, 1: the same function). Why: to find which part
    of what a candidate does makes real pages read worse, without retraining
    (docs/model-history.md, "Where the residual candidates' harm comes from")."""
    import keras
    from keras import layers

    c = model.get_layer(CORRECTION).output
    up = layers.ReLU(name="part_lighten")(c)
    down = layers.ReLU(name="part_darken")(layers.Rescaling(-1.0, name="part_flip")(c))
    c = layers.Add(name="part_sum")([layers.Rescaling(lighten, name="part_l")(up),
                                     layers.Rescaling(-darken, name="part_d")(down)])
    c = _depth_to_space(c, int(model.inputs[0].shape[1]), prefix="part")
    out = layers.Add(name="part_add")([model.inputs[0], c])
    out = layers.ReLU(max_value=1.0, name="part_clean")(out)
    return keras.Model(model.inputs[0], out, name=model.name)


def grow_context(model, context_width: int = 16):
    """A context-reading copy of a trained shuffle ``model`` that starts out computing
    exactly what ``model`` computes, whatever the context: every weight is copied, and
    the latent convolution's new input channels (the context branch's) start at zero.
    Only the plain shuffle model (no decoder conv, no refinement head: the shipped
    design) can grow; anything else raises ``ValueError``.

    Why: the base model's long first stage need not be repeated to try page context;
    a fine-tune from the grown model learns only what the context adds.
    """
    import numpy as np
    from keras import layers

    if len(model.inputs) != 1:
        raise ValueError("the model already reads page context")
    old = [l for l in model.layers if isinstance(l, layers.Conv2D)]
    shapes = [tuple(l.kernel.shape) for l in old]
    if (len(old) != 4 or shapes[0][:3] != (4, 4, 1) or old[0].strides != (2, 2)
            or shapes[3][3] != 4):
        raise ValueError(f"only the plain shuffle model can grow a context branch; this "
                         f"one has convolutions {shapes}")
    new = build_model(int(model.inputs[0].shape[1]), shapes[0][3], shapes[1][3],
                      arch="shuffle", output_kernel=shapes[3][0], context_width=context_width)
    trunk = [l for l in new.layers
             if isinstance(l, layers.Conv2D) and not l.name.startswith(CONTEXT_PREFIX)]
    for dst, src in zip(trunk, old):
        kernel, bias = src.get_weights()
        if dst.kernel.shape != kernel.shape:  # the latent conv: context channels appended
            grown = np.zeros(dst.kernel.shape, kernel.dtype)
            grown[:, :, : kernel.shape[2]] = kernel
            kernel = grown
        dst.set_weights([kernel, bias])
    return new
