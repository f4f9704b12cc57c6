"""Step into RoIAlign's bilinear sampling with pdb. The recipe: docs/debugging.md.

    NUMBA_DISABLE_JIT=1 python -m pdb docs/examples/step_into_roi_align.py

One feature map, one box, one call of roi_align. The map is a stride-4 feature map of
5 x 5 cells holding 0..24 (the torchvision test input, docs/torchvision-parity.md), so
cell (y, x) holds 5*y + x; the box (1, 3, 11, 13) in image pixels is
(0.25, 0.75, 2.75, 3.25) in feature cells, cut into 2 x 2 bins of 1.25 cells with
2 x 2 samples per bin. Every number is a multiple of 1/64, so pdb prints exact values.

The script imports the installed package, so it may live anywhere; copy it and change
the map, the box or the sizes to look at another case.
"""

import sys

import numba
import numpy as np

from minimrcnn import reference_kernels_enabled
from minimrcnn.ops.roi_align import roi_align

if reference_kernels_enabled():
    # The readable twin runs: plain Python, so its breakpoints are hit with or without the JIT.
    print("note: MINIMRCNN_KERNELS=reference runs the readable twin, not the kernels: break on "
          "bilinear_interpolate (minimrcnn.ops.roi_align) instead of _bilinear_entry", file=sys.stderr)
elif not numba.config.DISABLE_JIT:
    print("warning: NUMBA_DISABLE_JIT is not 1, so the Numba kernels run compiled and a pdb "
          "breakpoint inside them is accepted but never hit. Run:\n"
          "    NUMBA_DISABLE_JIT=1 python -m pdb " + sys.argv[0], file=sys.stderr)

features = np.arange(25, dtype=np.float64).reshape(1, 1, 5, 5)     # [N=1, C=1, H=5, W=5]
boxes = np.array([[0.0, 1.0, 3.0, 11.0, 13.0]])                    # [R=1, 5]: (batch, x1, y1, x2, y2)
out = roi_align(features, boxes, output_size=2, spatial_scale=0.25, sampling_ratio=2)
print(out[0, 0])                                                   # [PH=2, PW=2]
