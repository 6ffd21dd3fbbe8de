"""Post-training quantization (PTQ) losses: the validation loss with rounded weights.

At the end of a run the weights of every transformer linear (q, k, v, o, gate, up, down; not the
embedding, the LM head or the norms) are rounded with the reference quantizer of
``training.quant`` to a target format, scaled per group along the input dim (``dim=-1``), the
validation loss is measured, and the weights are put back. Kumar et al. 2024 (arXiv 2411.04330)
found this degradation to grow with the training tokens D.
"""

import torch

from training.config import parse_granularity


def ptq_losses(model, evaluate, formats, granularity="channel"):
    """Return the validation loss after rounding the transformer weights to each format.

    Parameters
    ----------
    model : training.model.GPT
    evaluate : callable
        Returns the validation loss of ``model`` (float, nats/token).
    formats : list of str
        Format names such as ``"e4m3"``; each gives a key ``"<fmt>"`` in the result.
    granularity : str
        ``"tensor"``, ``"channel"`` or a block size such as ``"128"``.

    Returns
    -------
    dict of str to float
        Loss (nats/token) per format name. The weights of ``model`` are unchanged on return.
    """
    from training.quant.reference import quantize_reference
    from training.quant.spec import parse_format

    gran = parse_granularity(granularity, "ptq_granularity")
    weights = [m.weight for _, m in model.transformer_linears()]
    saved = [w.detach().clone() for w in weights]
    out = {}
    try:
        for name in formats:
            fmt = parse_format(name)
            with torch.no_grad():
                for w in weights:
                    w.copy_(quantize_reference(w.detach().float(), fmt, gran, dim=-1).to(w.dtype))
            out[name] = evaluate()
            with torch.no_grad():
                for w, w0 in zip(weights, saved):
                    w.copy_(w0)
    finally:
        with torch.no_grad():
            for w, w0 in zip(weights, saved):
                w.copy_(w0)
    return out
