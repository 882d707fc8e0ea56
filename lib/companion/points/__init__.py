"""Point clouds as sequences: curve serialization, patches, grid pooling, samplers, training and profiling."""
from .grid import GridPooling, Patches, grid_neighbours, grid_pool_index, grid_unpool, make_patches, segment_reduce
from .sample import farthest_point_sample, grid_sample, random_sample
from .serialize import (ORDERS, Serialization, encode, hilbert_encode, hilbert_encode_skilling, inverse_permutation,
                        locality, serialize, shift_serialization, z_order_decode, z_order_encode,
                        z_order_encode_reference)

__all__ = [
    "ORDERS", "Serialization", "encode", "serialize", "shift_serialization", "inverse_permutation", "locality",
    "z_order_encode", "z_order_decode", "z_order_encode_reference", "hilbert_encode", "hilbert_encode_skilling",
    "Patches", "make_patches", "GridPooling", "grid_pool_index", "grid_unpool", "segment_reduce", "grid_neighbours",
    "grid_sample", "farthest_point_sample", "random_sample",
]
