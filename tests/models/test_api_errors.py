"""The model's API with the wrong argument: model.backward(anything but a training cache), and images of
another float dtype than the weights (cast, not a conv error)."""

import numpy as np
import pytest

from tests.models.test_mask_rcnn import make_sample, tiny_model


@pytest.fixture(scope="module")
def trained_and_eval():
    model = tiny_model()
    rng = np.random.default_rng(0)
    image, target = make_sample(rng)
    losses, cache = model([image], [target])
    outputs = tiny_model().eval()([image])
    return model, losses, cache, outputs


@pytest.mark.parametrize("argument,fragment", [
    ("none", "got None"),
    ("eval outputs", "got a list of detections: the output of an eval-mode forward, which keeps no cache. "
                     "Call model.train()"),
    ("losses", "got the losses dict: pass the cache that came with it"),
    ("pair", "got the (losses, cache) pair itself: pass its second element"),
    ("number", "got a float"),
    ("other dict", "got a dict"),
    ("images", "got a list"),
])
def test_backward_says_what_it_expects(trained_and_eval, argument, fragment):
    model, losses, cache, outputs = trained_and_eval
    value = {"none": None, "eval outputs": outputs, "losses": losses, "pair": (losses, cache), "number": 1.0,
             "other dict": {"rpn": 1}, "images": [np.zeros((3, 8, 8), np.float32)]}[argument]
    grads_before = [p.grad.copy() for p in model.parameters()]
    with pytest.raises(TypeError) as err:
        model.backward(value)
    msg = str(err.value)
    assert msg.startswith("model.backward(cache) expects the MaskRCNNCache of a training-mode forward"), msg
    assert "losses, cache = model(images, targets); model.backward(cache)" in msg and fragment in msg, msg
    assert all(np.array_equal(p.grad, g) for p, g in zip(model.parameters(), grads_before))   # nothing added
    model.backward(cache)                                                                      # the real one works


def _same(a, b):
    return all(np.array_equal(x[k], y[k]) for x, y in zip(a, b) for k in ("boxes", "labels", "scores", "masks"))


def test_float64_image_is_cast_to_the_weights_dtype():
    model = tiny_model().eval()
    image32 = np.random.default_rng(1).random((3, 64, 64)).astype(np.float32)
    out32 = model([image32])
    out64 = model([image32.astype(np.float64)])      # was: "weight must have the input's dtype" inside a conv
    assert _same(out32, out64) and out64[0]["boxes"].dtype == np.float32


def test_images_follow_a_float64_model():
    model = tiny_model().astype(np.float64).eval()
    image32 = np.random.default_rng(2).random((3, 64, 64)).astype(np.float32)
    uint8 = (np.random.default_rng(3).random((64, 64, 3)) * 255).astype(np.uint8)
    out = model([image32, uint8])
    assert out[0]["boxes"].dtype == np.float64
    batch = model.inspect([image32])["images"]
    assert batch.dtype == np.float64


def test_float64_training_step_on_a_float32_model():
    model = tiny_model()
    image, target = make_sample(np.random.default_rng(4), dtype=np.float64)
    losses, cache = model([image], [target])
    model.backward(cache)
    assert all(p.grad.dtype == np.float32 for p in model.parameters())


@pytest.mark.parametrize("image,error,message", [
    (np.zeros((3, 8, 8), np.float16), TypeError, r"images\[0\] must be float32/float64 .* got dtype float16"),
    (np.full((3, 8, 8), 2.0), ValueError, r"images\[0\] must have finite float values in \[0, 1\]"),
    (np.zeros((8, 8, 3), np.float64), ValueError, r"images\[0\] must be a float \[3, H, W\] image"),
])
def test_images_still_checked_before_the_cast(image, error, message):
    with pytest.raises(error, match=message):
        tiny_model().eval()([image])
