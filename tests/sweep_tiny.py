"""The [fixed] section of the tiny CPU grids the sweep tests run: the 'test' model size on the
shipped token sample, a few steps, no post-training quantization."""

TINY_FIXED = """
[fixed]
model = "test"
data = "training/data/sample"
seq_len = 64
tokens = 2048
eval_tokens = 512
eval_points = 1
check_every = 4
ptq_formats = ""
device = "cpu"
"""
