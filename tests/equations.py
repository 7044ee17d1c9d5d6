"""SANet written straight from the paper's equations, on raw state dicts, for parity tests.

Deliberately shares no code with the `sanet` package: plain functional ops, the original
release's semantics (ceil-mode pooling, unbiased variance, style encoded as the original
does), extended to odd sizes by cropping to the sizes the image actually covers.
"""

import torch
import torch.nn.functional as F

VGG_TO_RELU4_1 = [0, 2, 5, "pool", 9, 12, "pool", 16, 19, 22, 25, "pool", 29]
VGG_TO_RELU5_1 = [32, 35, 38, "pool", 42]
DECODER = [1, "up", 5, 8, 11, 14, "up", 18, 21, "up", 25, 28]


def conv(x, state, name, relu=True):
    weight, bias = state[f"{name}.weight"], state[f"{name}.bias"]
    if weight.shape[-1] == 3:
        x = F.pad(x, (1, 1, 1, 1), mode="reflect")
    y = F.conv2d(x, weight, bias)
    return torch.relu(y) if relu else y


def pool(x):
    """2x2 max pool that keeps a partial last row/column (ceil mode)."""
    h, w = x.shape[-2:]
    x = F.pad(x, (0, w % 2, 0, h % 2), value=float("-inf"))
    return F.max_pool2d(x, 2)


def run(x, state, program, last_relu=True):
    for i, step in enumerate(program):
        if step == "pool":
            x = pool(x)
        elif step == "up":
            x = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
        else:
            relu = step != 0 and (last_relu or i < len(program) - 1)
            x = conv(x, state, step, relu=relu)
    return x


def encode(image, vgg):
    relu4_1 = run(image, vgg, VGG_TO_RELU4_1)
    return relu4_1, run(relu4_1, vgg, VGG_TO_RELU5_1)


def normalise(x, eps=1e-5):
    n, c = x.shape[:2]
    flat = x.reshape(n, c, -1)
    mean = flat.mean(dim=2).reshape(n, c, 1, 1)
    std = (flat.var(dim=2) + eps).sqrt().reshape(n, c, 1, 1)
    return (x - mean) / std


def attention(fc, fs, t, level):
    """Fcs = Fc + W_out * sum_j softmax_j(f(norm Fc)_i . g(norm Fs)_j) h(Fs)_j"""
    p = f"sanet{level}"
    f = F.conv2d(normalise(fc), t[f"{p}.f.weight"], t[f"{p}.f.bias"])
    g = F.conv2d(normalise(fs), t[f"{p}.g.weight"], t[f"{p}.g.bias"])
    h = F.conv2d(fs, t[f"{p}.h.weight"], t[f"{p}.h.bias"])
    scores = torch.einsum("ncq,nck->nqk", f.flatten(2), g.flatten(2))
    weights = scores.softmax(dim=-1)
    out = torch.einsum("nqk,nck->ncq", weights, h.flatten(2)).reshape(fc.shape)
    return fc + F.conv2d(out, t[f"{p}.out_conv.weight"], t[f"{p}.out_conv.bias"])


def transform(c4, s4, c5, s5, t):
    a4 = attention(c4, s4, t, "4_1")
    a5 = attention(c5, s5, t, "5_1").repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    merged = a4 + a5[:, :, : a4.shape[2], : a4.shape[3]]
    return conv(merged, t, "merge_conv", relu=False)


@torch.no_grad()
def stylize(content, style, vgg, decoder, t, iterations=1, strength=1.0):
    """The original evaluation loop (style re-encoded each step), output cropped to the input."""
    image = content
    for _ in range(iterations):
        c4, c5 = encode(image, vgg)
        s4, s5 = encode(style, vgg)
        features = transform(c4, s4, c5, s5, t)
        if strength != 1.0:
            identity = transform(c4, c4, c5, c5, t)
            features = strength * features + (1 - strength) * identity
        image = run(features, decoder, DECODER, last_relu=False)
        image = image[:, :, : content.shape[2], : content.shape[3]]
    return image.clamp(0, 1)
