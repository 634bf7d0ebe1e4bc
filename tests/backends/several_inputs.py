"""The spec both backends' model tests use for the layers of several inputs: cross-attention
of other widths, decoders, attention without projections, dot products; prelu on images
(channels-first in the PyTorch program), on sequences of `?` steps and on vectors."""

SEVERAL_INPUTS = """
model net {
    input target: float[5, 8]
    input source: float[?, 6]
    input image: float[6, 6, 3]
    graph {
        memory = source -> dense(8) -> transformer_encoder(2, 16)
        h = transformer_decoder(target, memory, 2, 16)
        h = transformer_decoder(h, memory, 4, 12, norm_first=true, causal=false, activation=gelu)
        c = multihead_attention(h, source, 2, key_dim=3, causal=true)
        d = multihead_attention(c, memory, source, heads=4, init=he_uniform)
        e = attention(d, source, memory, use_scale=true, score_mode=concat) -> prelu(shared=true)
        f = attention(d, memory, dropout=0.1)
        g = additive_attention(f, source, memory) -> prelu(alpha=0.1)
        k = additive_attention(e, g, use_scale=false)
        scores = dot(k, e, axes=-1, normalize=true) -> flatten()
        pictures = image -> conv2d(4, 3) -> prelu() -> global_avgpool2d() -> prelu()
        joined = dot(pictures, pictures, axes=1)
        cosines = dot(c, d, axes=[1, 1])
    }
    output scores, joined, cosines
}
"""
