"""Cut a page into overlapping square patches, run a function on them, blend them back.

Pure numpy: knows nothing about ONNX, files or dtypes other than float32.

Geometry. With patch size ``P`` and overlap ``o`` (0 <= o <= P // 2) patches sit on
a grid of stride ``s = P - o``. The page is padded (mirror-symmetric, so stains
and grey backgrounds continue naturally) by ``o`` on the top/left and by enough
on the bottom/right to complete the grid. Each patch is weighted by a separable
window whose edges are ramps over the ``o`` overlapping pixels: zero on the
outermost ``o // 4`` pixels, linear in between, and the falling ramp the mirror
of the rising one. Neighbouring ramps sum to exactly 1, so the weights form a
partition of unity over every real page pixel: the blend needs no
normalisation buffer, an identity function reproduces the page exactly, and the
pixels at a patch border (where the network sees zero padding and is least
reliable) get little or no weight.

Output scale. With an integer scale ``k >= 1`` (``TileGrid.scale``) the function
enlarges: P x P patches in, kP x kP out, and the output is the kH x kW page. The
input side is unchanged (same padding, grid and patches); the output side is the
same geometry at k times: patches of ``kP`` on a stride of ``ks`` with ``ko``
overlapping pixels, weighted by ``blend_window(kP, ko)``, the page offset by
``ko`` in the padded output. Output patch (i, j) covers exactly the k-times
enlargement of the input pixels its input patch covers, so an output page pixel
lies under the same patches as the input pixel it enlarges. The partition of
unity holds for the same reason as at k = 1: the ramps now run over ``ko``
pixels (zero on the outermost ``ko // 4``), a rising ramp and the mirrored
falling ramp of its neighbour overlap on exactly those ``ko`` pixels, and
``ramp[j] + ramp[ko - 1 - j] = 1`` for any ramp length (in float32 exactly where
the ramp's steps are dyadic, as at k = 1 or 2 with o = 4, else to within an ulp:
blank paper at k = 3, o = 4 comes out 1.0 +- 6e-8). With k = 1 everything is as
before, bit for bit.

Memory. The page is processed in bands of whole patch rows, ``workers`` of them
at once. A band's patches are extracted from a strided view (one copy, into the
batch), and the blend accumulator only spans the band plus ``o`` carried rows
(``ko`` output rows, at scale k). Peak memory beyond input and output is
therefore O(workers x band height x page width), not O(page); at scale k the
output side (the model's results and the accumulator) is that at the output
scale, k^2 times the input band: O(workers x k x band height x k x page width).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import SettingsError
from .parallel import map_ordered

#: (N, P, P) float32 in -> (N, kP, kP) float32 out, k the grid's ``scale`` (1 unless
#: enlarging). Called with N <= the batch limit.
PatchFn = Callable[[np.ndarray], np.ndarray]
#: (y0, y1) -> float32 rows y0..y1-1 of the page, full width, shape (y1-y0, W).
RowSource = Callable[[int, int], np.ndarray]
#: (y0, y1, rows) -> None; receives finished float32 output rows (in order with one
#: worker; with more, in any order and from several threads). At scale k these are
#: rows y0..y1-1 of the kH x kW output page, shape (y1-y0, kW).
RowSink = Callable[[int, int, np.ndarray], None]
#: (ys, xs) -> (N, P, P) float32: what a model reads beside each patch, given the page
#: coordinates (two (N,) int arrays) of the patches' top-left corners, which are
#: negative or past the page edge where the padded grid reaches beyond it. The
#: coordinates are always those of the *input* page, whatever the scale; the tiler
#: passes whatever this returns to ``fn`` unchanged, so at scale k it may return
#: (N, kP, kP) arrays, e.g. an interpolated enlargement of the page cut at the output
#: window, whose top-left corner in the output page is (k * ys, k * xs).
ContextFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: (N, P, P) patches, context(ys, xs) -> (N, kP, kP) float32 out (k = 1: (N, P, P)).
PatchContextFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def blend_window(patch: int, overlap: int) -> np.ndarray:
    """The P x P float32 weight of one patch (see the module docstring)."""
    w = np.ones(patch, dtype=np.float32)
    if overlap:
        m = overlap // 4  # outermost pixels, dropped entirely
        j = np.arange(overlap, dtype=np.float32)
        ramp = np.clip((j + 0.5 - m) / (overlap - 2 * m), 0.0, 1.0)
        w[:overlap] = ramp
        w[patch - overlap :] = ramp[::-1]
    return np.outer(w, w)


def symmetric_indices(start: int, stop: int, n: int) -> np.ndarray:
    """Source indices for padded positions start..stop-1 of an axis of length n.

    Mirror-symmetric padding (``abcd|dcba|abcd``) that, unlike ``np.pad``'s
    reflect mode, works for any pad width and for n == 1.
    """
    i = np.arange(start, stop) % (2 * n)
    return np.where(i >= n, 2 * n - 1 - i, i)


def column_pieces(idx: np.ndarray, min_run: int = 32) -> list[slice | np.ndarray]:
    """Split gather indices into slices (runs of consecutive indices at least
    ``min_run`` long) and index arrays (everything else), in order, so that
    ``np.concatenate([a[:, p] for p in pieces], axis=1)`` equals ``a[:, idx]``.
    A mirror-padded row is one long run with short mirrored ends; copying the
    run as a slice is ~1.5x faster than a fancy-index gather."""
    pieces: list[slice | np.ndarray] = []
    breaks = np.flatnonzero(np.diff(idx) != 1) + 1
    pending: list[np.ndarray] = []
    for run in np.split(idx, breaks):
        if len(run) >= min_run:
            if pending:
                pieces.append(np.concatenate(pending))
                pending = []
            pieces.append(slice(int(run[0]), int(run[0]) + len(run)))
        else:
            pending.append(run)
    if pending:
        pieces.append(np.concatenate(pending))
    return pieces


#: Defaults of every entry point (Denoiser, denoise_page, the benchmarks), kept here once.
#: Measured (README, "Speed"): overlap 4 scored as well as 6 on the OCR benchmark with 16%
#: fewer patches; batches of 128 ran faster than 256 or 512 on a 2-core CPU.
DEFAULT_OVERLAP = 4
DEFAULT_BATCH_SIZE = 128
#: Patches whose every pixel is at least this are blank paper: they come out white
#: (1.0) without the model (``Denoiser(skip_white=...)``). Chosen on the selection pages
#: (``benchmarks/white_patches.py``): where the shipped model runs, its darkest output on
#: such patches is 253 of 255 and a page differs from the model-everywhere page by at
#: most 2 grey levels; at 0.95 a phone capture's page differed by 5, at 0.9 by 30. They
#: are 0 to 30% of a page's patches (margins, gaps), none on a page noisy everywhere.
DEFAULT_SKIP_WHITE = 0.97


@dataclass(frozen=True)
class TileGrid:
    """Where the patches of an H x W page go.

    ``height``, ``width``, ``patch``, ``overlap`` and the properties below are those of
    the input page and its patches. ``scale`` (an int k >= 1) is the output's: the
    patch function returns kP x kP patches and the output page is kH x kW
    (``out_height`` x ``out_width``).
    """

    height: int
    width: int
    patch: int = 28
    overlap: int = DEFAULT_OVERLAP
    scale: int = 1

    def __post_init__(self) -> None:
        if (isinstance(self.scale, bool) or not isinstance(self.scale, (int, np.integer))
                or self.scale < 1):
            raise SettingsError(f"scale must be an int >= 1, got {self.scale!r}")
        if self.height < 1 or self.width < 1:
            raise SettingsError(f"page must be at least 1x1, got {self.height}x{self.width}")
        if self.patch < 2:
            raise SettingsError(f"patch size must be >= 2, got {self.patch}")
        if not 0 <= self.overlap <= self.patch // 2:
            raise SettingsError(
                f"overlap must be in [0, {self.patch // 2}] for patch {self.patch}, "
                f"got {self.overlap}"
            )

    @property
    def stride(self) -> int:
        return self.patch - self.overlap

    @property
    def rows(self) -> int:
        """Number of patch rows: enough that every page row has full weight."""
        return -(-(self.height + self.overlap) // self.stride)

    @property
    def cols(self) -> int:
        return -(-(self.width + self.overlap) // self.stride)

    @property
    def count(self) -> int:
        return self.rows * self.cols

    @property
    def out_height(self) -> int:
        """Rows of the output page: ``scale * height``."""
        return self.scale * self.height

    @property
    def out_width(self) -> int:
        """Columns of the output page: ``scale * width``."""
        return self.scale * self.width


def apply_tiled(
    source: RowSource,
    sink: RowSink,
    grid: TileGrid,
    fn: PatchFn | PatchContextFn,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    context: ContextFn | None = None,
    skip_white: float | None = None,
    workers: int = 1,
) -> None:
    """Run ``fn`` over every patch of the page and blend the results.

    ``source`` is asked for page rows (float32, [0, 1]) band by band;
    ``sink`` receives the blended output rows, each output row exactly once. ``fn``
    is called with at most ``batch_size`` patches at a time; a band holds
    ``band_rows(cols, batch_size)`` patch rows, which bounds memory.
    With ``context`` (see ``ContextFn``), ``fn`` is called as ``fn(patches,
    context(ys, xs))`` for each batch, for models that read more than the patch.
    ``skip_white``: a patch whose every pixel is at least this is not given to
    ``fn``; its output is 1.0 (white). The other patches of a band are gathered
    into full batches. Whether a patch is skipped depends only on its own
    pixels, so the result is still the same for any band and batch size.

    ``grid.scale`` (k, default 1): ``fn`` returns (N, kP, kP) for its (N, P, P)
    patches (anything else raises ``SettingsError``), the results are blended at k
    times the input grid (see the module docstring) and ``sink`` gets rows of the
    kH x kW output page, ``sink(y0, y1, rows)`` with y0, y1 output rows and rows of
    shape (y1 - y0, kW). ``context`` is still given input-page corners (ys, xs) and
    its result reaches ``fn`` unchanged, so it may be (N, kP, kP), cut at the
    output window whose top-left is (k * ys, k * xs). A skipped white patch gives a
    kP x kP block of 1.0. Bands and reads from ``source`` are the same as at k = 1.

    ``workers``: bands processed at once, each in its own thread (``source``,
    ``fn``, ``context`` and ``sink`` are then called from several threads at
    once, and ``sink`` gets rows in no fixed order); memory grows to ``workers``
    bands. With 1 (the default) everything runs in the caller's thread and rows
    reach ``sink`` top to bottom. Each band's first ``o`` (output: ``ko``) rows
    wait for the band above it, so every pixel is the same two-term sums in the
    same order: the result is bit-identical for any ``workers``, band and batch
    size.
    """
    if batch_size < 1:
        raise SettingsError(f"batch_size must be >= 1, got {batch_size}")
    if workers < 1:
        raise SettingsError(f"workers must be >= 1, got {workers}")
    P, o, s = grid.patch, grid.overlap, grid.stride
    H, W = grid.height, grid.width
    nr, nc = grid.rows, grid.cols
    k = int(grid.scale)
    # The output side: the same geometry at k times (Q = kP, t = ks, q = ko).
    Q, t, q = k * P, k * s, k * o
    OH, OW = k * H, k * W
    window = blend_window(Q, q)
    col_pieces = column_pieces(symmetric_indices(-o, (nc - 1) * s + P - o, W))
    rows_per_band = band_rows(nc, batch_size)

    def emit(py: int, rows: np.ndarray) -> None:
        """Finished padded output rows py.. (output page rows py - q..), clipped to
        the output page."""
        a0, a1 = max(py - q, 0), min(py - q + len(rows), OH)
        if a1 > a0:
            sink(a0, a1, rows[a0 - (py - q) : a1 - (py - q), q : q + OW])

    def run(patches: np.ndarray, *extra: np.ndarray) -> np.ndarray:
        got = fn(patches, *extra)
        if np.shape(got) != (len(patches), Q, Q):
            raise SettingsError(
                f"the patch function returned shape {np.shape(got)} for {patches.shape} "
                f"patches; with scale {k} it must return ({len(patches)}, {Q}, {Q})")
        return got

    def band(r0: int, above: np.ndarray | None = None) -> tuple[np.ndarray | None, np.ndarray]:
        """Patch rows r0.. through ``fn``, blended. With ``above`` (the tails of
        the band above) every finished row is emitted, top to bottom, and
        (None, this band's tails) returned; without it the first ``q`` output
        rows, which still lack those tails, are returned instead of emitted."""
        br = min(rows_per_band, nr - r0)
        # Padded rows this band reads: [r0*s, r0*s + (br-1)*s + P).
        py0, py1 = r0 * s, r0 * s + (br - 1) * s + P
        src_idx = symmetric_indices(py0 - o, py1 - o, H)
        lo, hi = int(src_idx.min()), int(src_idx.max()) + 1
        rows = source(lo, hi)
        if len(src_idx) != hi - lo or (np.diff(src_idx) != 1).any():
            rows = rows[src_idx - lo]  # mirror-pad rows (inside the page: no copy)
        rows = np.concatenate([rows[:, c] for c in col_pieces], axis=1)  # and columns

        # The band's patches, a strided view copied once into the batch.
        r_stride, c_stride = rows.strides
        views = np.lib.stride_tricks.as_strided(
            rows, (br, nc, P, P), (s * r_stride, s * c_stride, r_stride, c_stride),
            writeable=False)
        patches = np.ascontiguousarray(views).reshape(br * nc, P, P)
        out = np.empty((br * nc, Q, Q), dtype=np.float32)
        if context is not None:  # page coordinates of each patch's top-left corner
            ys = np.repeat(np.arange(br) * s + py0 - o, nc)
            xs = np.tile(np.arange(nc) * s - o, br)
        todo = None  # every patch
        if skip_white is not None:
            inked = patches.reshape(len(patches), -1).min(axis=1) < skip_white
            if not inked.all():
                todo = np.flatnonzero(inked)
                out[~inked] = 1.0
                patches = patches[todo]
                if context is not None:
                    ys, xs = ys[todo], xs[todo]
        done = out if todo is None else np.empty((len(patches), Q, Q), dtype=np.float32)
        for b0 in range(0, len(patches), batch_size):
            b1 = b0 + batch_size
            if context is None:
                done[b0:b1] = run(patches[b0:b1])
            else:
                done[b0:b1] = run(patches[b0:b1], context(ys[b0:b1], xs[b0:b1]))
        if todo is not None:
            out[todo] = done
        np.multiply(out, window, out=out)
        wp = out.reshape(br, nc, Q, Q).transpose(0, 2, 1, 3)  # (br, Q, nc, Q)

        # Blend each patch row into a strip, then strips into rows. Every pixel
        # is a fixed two-term sum at each step, so the result is bit-identical
        # whatever the band and batch sizes (float addition is commutative but
        # not associative). strips[i, u, j, v] is pixel (u, j*t + v) of strip i.
        blocks = np.empty((br, Q, nc + 1, t), dtype=np.float32)
        blocks[:, :, :nc, :] = wp[..., :t]
        blocks[:, :, nc, :] = 0
        if q:
            blocks[:, :, 1:, :q] += wp[..., t:]
        strips = blocks.reshape(br, Q, (nc + 1) * t)
        acc = strips[:, :t]  # (br, t, width): finished rows of each patch row
        if q:
            acc[1:, :q] += strips[:-1, t:]
        tails = strips[-1, t:].copy()
        # Padded output rows [k*py0 + i*t, k*py0 + (i+1)*t) are output page rows
        # shifted by q.
        oy0 = k * py0
        head = None
        if above is not None:
            acc[0, :q] += above
            emit(oy0, acc[0])
        else:
            emit(oy0 + q, acc[0, q:])
            head = acc[0, :q].copy()
        for i in range(1, br):  # one patch row at a time: its t rows are contiguous
            emit(oy0 + i * t, acc[i])
        return head, tails

    starts = range(0, nr, rows_per_band)
    carry = np.zeros((q, (nc + 1) * t), dtype=np.float32)  # above the page: nothing
    if workers == 1 or len(starts) == 1:
        for r0 in starts:
            carry = band(r0, carry)[1]
        return
    # map_ordered first, so that zip exhausts it and its pool is shut down here.
    for (head, tails), r0 in zip(map_ordered(band, starts, workers), starts):
        assert head is not None
        head += carry  # the same sum the serial path makes, in the same order
        emit(k * r0 * s, head)
        carry = tails


#: Patches per band the tiler aims for. A 300-DPI letter page is 107 patches wide,
#: so a band of one batch was one patch row: 138 bands, each paying its own reads,
#: padding and resizes. Four rows per band (512) ran best of 1, 256, 512, 1024 and
#: 2048 (``benchmarks/pipeline_speed.py``); much larger bands fall out of the cache.
BAND_PATCHES = 512


def band_rows(cols: int, batch_size: int) -> int:
    """Patch rows per band: at least one, at least ``batch_size`` patches, and
    about ``BAND_PATCHES`` where the batch is smaller, so that memory beyond the
    page stays O(band x width) while per-band work is paid on few bands."""
    return max(1, max(batch_size, BAND_PATCHES) // cols)


def tile_array(page: np.ndarray, fn: PatchFn, *, patch: int = 28,
               overlap: int = DEFAULT_OVERLAP,
               batch_size: int = DEFAULT_BATCH_SIZE,
               skip_white: float | None = None, workers: int = 1,
               scale: int = 1) -> np.ndarray:
    """Convenience form of ``apply_tiled`` for a whole float32 H x W page in memory;
    returns the (scale x H, scale x W) output page."""
    page = np.asarray(page, dtype=np.float32)
    grid = TileGrid(page.shape[0], page.shape[1], patch, overlap, scale)
    out = np.empty((grid.out_height, grid.out_width), dtype=np.float32)

    def sink(y0: int, y1: int, rows: np.ndarray) -> None:
        out[y0:y1] = rows

    apply_tiled(lambda a, b: page[a:b], sink, grid, fn, batch_size=batch_size,
                skip_white=skip_white, workers=workers)
    return out
