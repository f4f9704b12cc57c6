"""Lesson 02's bug hunt: a readable RoIAlign backward with one planted bug.

The library's ``roi_align_backward`` is correct, and nothing here touches it. This module is a
second, plain-Python backward written for the hunt: the loops of
``minimrcnn.ops.roi_align.roi_align_backward_reference``, built from the library's own
``roi_align_sample_points`` and ``bilinear_interpolate``, with the scatter of one sample into
its four neighbours pulled out into a function, ``spread``. The default ``spread_buggy`` holds
one realistic bug. The switch is the ``spread`` argument: pass a fixed version (exercise 3 of
lesson 02) and the gradient check passes.

It is plain Python (no Numba), so a pdb breakpoint on ``spread_buggy`` is hit in Jupyter without
``NUMBA_DISABLE_JIT`` (docs/debugging.md explains when that switch is needed).

Shape shorthand (docs/shapes.md): N images, C channels, H, W feature size, R RoIs.
"""

from __future__ import annotations

import numpy as np

from minimrcnn.ops.roi_align import bilinear_interpolate, roi_align_sample_points


def spread_buggy(dinput, g, neighbours, count):
    """Add one sample's share of the bin gradient to its 4 neighbours, in place.

    dinput (float[C, H, W]): the gradient plane of the RoI's image.
    g (float[C]): dL/dout of the bin this sample belongs to.
    neighbours: (y_low, y_high, x_low, x_high, w1, w2, w3, w4) from ``bilinear_interpolate``;
        w1..w4 weigh (y_low, x_low), (y_low, x_high), (y_high, x_low), (y_high, x_high).
    count (int): gh * gw, the samples the bin averages.
    """
    y_low, y_high, x_low, x_high, w1, w2, w3, w4 = neighbours
    dinput[:, y_low, x_low] += g * w1 / count
    dinput[:, y_low, x_high] += g * w3 / count
    dinput[:, y_high, x_low] += g * w2 / count
    dinput[:, y_high, x_high] += g * w4 / count


def roi_align_backward_hunt(dout, cache, spread=spread_buggy):
    """RoIAlign's backward, loop by loop, each sample scattered by ``spread``.

    dout (float[R, C, PH, PW]), cache (RoIAlignCache from ``roi_align_forward``)
    -> dinput float[N, C, H, W]. Samples outside [-1, H] x [-1, W] add nothing (but count).
    """
    _, _, H, W = cache.input_shape
    dinput = np.zeros(cache.input_shape, dtype=dout.dtype)
    for r, roi in enumerate(cache.rois):                              # for each RoI
        grid = roi_align_sample_points(roi[1:], cache.output_size, cache.spatial_scale,
                                       cache.sampling_ratio, cache.aligned, dtype=cache.rois.dtype)
        count = grid["gh"] * grid["gw"]
        for ph, ys in enumerate(grid["ys"]):                          # for each output bin
            for pw, xs in enumerate(grid["xs"]):
                for y in ys:                                          # for each sample in the bin
                    for x in xs:
                        neighbours = bilinear_interpolate(H, W, y, x)
                        if neighbours is not None:
                            spread(dinput[int(roi[0])], dout[r, :, ph, pw], neighbours, count)
    return dinput
