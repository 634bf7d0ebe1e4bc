"""Weight initializers: part of a model's meaning, so both backends must apply the same ones.

The frameworks disagree by default (Keras: glorot_uniform kernels; PyTorch: kaiming-uniform
with a fan-in bias), so a spec names its initializers and the defaults are Keras's:

- `glorot_uniform` / `glorot_normal`: Glorot & Bengio, fan_in + fan_out (the kernel default).
- `he_uniform` / `he_normal`: He et al., fan_in, gain sqrt(2).
- `lecun_uniform` / `lecun_normal`: fan_in, gain 1.
- `orthogonal`: a (semi-)orthogonal matrix, gain 1 (recurrent kernels' default).
- `uniform`: U(-0.05, 0.05), Keras's `RandomUniform()` (embeddings' default).
- `zeros`, `ones`: constants (biases default to `zeros`).

The `*_normal` variants are truncated normals as in Keras (cut at two standard deviations).
A bias is a vector, which has no fan to scale by, so it takes only the constant and uniform
initializers.
"""

from typing import Literal, get_args

Initializer = Literal[
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "orthogonal",
    "uniform",
    "zeros",
    "ones",
]
BiasInitializer = Literal["zeros", "ones", "uniform"]

INITIALIZERS: tuple[str, ...] = get_args(Initializer)
BIAS_INITIALIZERS: tuple[str, ...] = get_args(BiasInitializer)

# Framework spellings of the initializer arguments, for "did you mean".
INIT_HINTS: dict[str, str] = {
    "kernel_initializer": "init",
    "embeddings_initializer": "init",
    "weight_init": "init",
    "initializer": "init",
}
BIAS_INIT_HINTS: dict[str, str] = {"bias_initializer": "bias_init"}
