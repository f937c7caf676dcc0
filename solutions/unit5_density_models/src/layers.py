"""Dense, convolution and transposed-convolution layers in ``autograd.numpy``.

Images are stored as ``x_NCHW`` (N images, C channels, H rows, W columns), as PyTorch does.
A convolution here is a cross-correlation (the kernel is not flipped), with PyTorch's weight layouts:
``conv2d`` takes ``W_OCKK`` (out channels, in channels, K, K), ``conv_transpose2d`` takes
``W_COKK`` (in channels, out channels, K, K). Output sizes::

    conv2d:           H_out = (H + 2 * padding - K) // stride + 1
    conv_transpose2d: H_out = (H - 1) * stride - 2 * padding + K + output_padding

The convolution gathers every K x K patch into a row (``im2col``) and takes one matrix product with
the flattened kernel. The gathering itself is a product with a 0/1 selection matrix along each image
axis, so no Python loop runs over pixels and autograd differentiates it with matrix products too.

Examples
--------
>>> import numpy as np
>>> patch_selection(4, 2, 2, 2, 0)
array([[1., 0., 0., 0.],
       [0., 0., 1., 0.],
       [0., 1., 0., 0.],
       [0., 0., 0., 1.]])
>>> x_NCHW = np.arange(16.0).reshape(1, 1, 4, 4)
>>> conv2d(x_NCHW, np.ones((1, 1, 2, 2)), np.zeros(1), stride=2)
array([[[[10., 18.],
         [42., 50.]]]])
>>> conv_transpose2d(np.ones((1, 1, 7, 7)), np.ones((1, 1, 3, 3)), np.zeros(1), stride=2, padding=1,
...                  output_padding=1).shape
(1, 1, 14, 14)
"""

import autograd.numpy as anp
import numpy as np


def dense(x_NI, W_IO, b_O):
    """Affine layer.

    Parameters
    ----------
    x_NI : array of shape (N, I)
    W_IO : array of shape (I, O)
    b_O : array of shape (O,)

    Returns
    -------
    y_NO : array of shape (N, O)
        x_NI @ W_IO + b_O.
    """
    ### BEGIN SOLUTION
    return x_NI @ W_IO + b_O
    ### END SOLUTION


def patch_selection(n_in, n_out, K, stride, padding, dtype=np.float64):
    """0/1 matrix that gathers the K x n_out patch positions along one image axis.

    Parameters
    ----------
    n_in, n_out : int
        Length along this axis of the input (before padding) and of the convolution's output.
    K, stride, padding : int
        Kernel size, stride and zero padding of the convolution.
    dtype : numpy dtype

    Returns
    -------
    S : ndarray of shape (K * n_out, n_in)
        S[i * n_out + a, stride * a + i - padding] = 1 where that column exists (0 .. n_in - 1);
        rows whose position falls into the zero padding are all zero.
    """
    ### BEGIN SOLUTION
    S = np.zeros((K * n_out, n_in), dtype=dtype)
    i_R, a_R = np.divmod(np.arange(K * n_out), n_out)
    col_R = stride * a_R + i_R - padding
    inside_R = (col_R >= 0) & (col_R < n_in)
    S[np.flatnonzero(inside_R), col_R[inside_R]] = 1.0
    return S
    ### END SOLUTION


def conv2d(x_NCHW, W_OCKK, b_O, stride=1, padding=0):
    """2-d convolution (cross-correlation) with zero padding and a stride.

    Parameters
    ----------
    x_NCHW : array of shape (N, C, H, W)
    W_OCKK : array of shape (O, C, K, K)
        Square kernels.
    b_O : array of shape (O,)
    stride : int >= 1
    padding : int >= 0
        Zeros added on every side of each image before the convolution.

    Returns
    -------
    y_NOHW : array of shape (N, O, H_out, W_out)
        y[n, o, a, b] = b_O[o] + sum_{c, i, j} W[o, c, i, j] * x_pad[n, c, stride * a + i, stride * b + j].

    Raises
    ------
    ValueError
        If the channels of x_NCHW and W_OCKK differ, stride < 1, padding < 0 or the padded image is
        smaller than the kernel.
    """
    ### BEGIN SOLUTION
    N, C, H, W = x_NCHW.shape
    O, C_w, K, _ = W_OCKK.shape
    if C_w != C:
        raise ValueError(f"W_OCKK has {C_w} input channels but x_NCHW has {C}")
    if stride < 1 or padding < 0:
        raise ValueError(f"need stride >= 1 and padding >= 0, got stride={stride}, padding={padding}")
    if min(H, W) + 2 * padding < K:
        raise ValueError(f"padded image ({H}x{W}, padding {padding}) is smaller than the kernel {K}x{K}")
    H_out = (H + 2 * padding - K) // stride + 1
    W_out = (W + 2 * padding - K) // stride + 1
    S_AH = patch_selection(H, H_out, K, stride, padding, x_NCHW.dtype)  # A = (i, a): K * H_out rows
    S_BW = patch_selection(W, W_out, K, stride, padding, x_NCHW.dtype)  # B = (j, b): K * W_out rows
    x_NCWA = anp.tensordot(x_NCHW, S_AH, axes=([2], [1]))
    x_NCAB = anp.tensordot(x_NCWA, S_BW, axes=([2], [1]))
    # one row per output pixel (n, a, b), one column per kernel entry (c, i, j)
    x_NCiajb = anp.reshape(x_NCAB, (N, C, K, H_out, K, W_out))
    patches_PF = anp.reshape(anp.transpose(x_NCiajb, (0, 3, 5, 1, 2, 4)), (N * H_out * W_out, C * K * K))
    y_PO = anp.dot(patches_PF, anp.reshape(W_OCKK, (O, C * K * K)).T) + b_O
    return anp.transpose(anp.reshape(y_PO, (N, H_out, W_out, O)), (0, 3, 1, 2))
    ### END SOLUTION


def conv_transpose2d(x_NCHW, W_COKK, b_O, stride=1, padding=0, output_padding=0):
    """2-d transposed convolution (the adjoint of ``conv2d`` with the same kernel size, stride, padding).

    Parameters
    ----------
    x_NCHW : array of shape (N, C, H, W)
    W_COKK : array of shape (C, O, K, K)
        Square kernels, in-channels first (PyTorch's ``ConvTranspose2d`` layout).
    b_O : array of shape (O,)
    stride : int >= 1
    padding : int >= 0
        Rows and columns removed from every side of the full transposed convolution.
    output_padding : int, 0 <= output_padding < stride
        Extra rows and columns at the bottom and right only, to reach sizes such as 7 -> 14.

    Returns
    -------
    y_NOHW : array of shape (N, O, H_out, W_out)
        With H_out = (H - 1) * stride - 2 * padding + K + output_padding; every input pixel
        x[n, c, h, w] adds x[n, c, h, w] * W[c, :, i, j] to output pixel
        (stride * h + i - padding, stride * w + j - padding) wherever that lies inside the output.

    Raises
    ------
    ValueError
        If the channels differ, stride < 1, padding < 0, output_padding is not in 0 .. stride - 1,
        or the output would be empty.
    """
    ### BEGIN SOLUTION
    N, C, H, W = x_NCHW.shape
    C_w, O, K, _ = W_COKK.shape
    if C_w != C:
        raise ValueError(f"W_COKK has {C_w} input channels but x_NCHW has {C}")
    if stride < 1 or padding < 0 or not 0 <= output_padding < stride:
        raise ValueError(
            "need stride >= 1, padding >= 0 and 0 <= output_padding < stride, got "
            f"stride={stride}, padding={padding}, output_padding={output_padding}"
        )
    H_out = (H - 1) * stride - 2 * padding + K + output_padding
    W_out = (W - 1) * stride - 2 * padding + K + output_padding
    if H_out < 1 or W_out < 1:
        raise ValueError(f"the output would have shape {H_out}x{W_out}")
    # Every input pixel spreads a K x K patch of each output channel: one matrix product ...
    x_PC = anp.reshape(anp.transpose(x_NCHW, (0, 2, 3, 1)), (N * H * W, C))
    cols_NhwOij = anp.reshape(anp.dot(x_PC, anp.reshape(W_COKK, (C, O * K * K))), (N, H, W, O, K, K))
    cols_NOAB = anp.reshape(anp.transpose(cols_NhwOij, (0, 3, 4, 1, 5, 2)), (N, O, K * H, K * W))
    # ... and the patches are added up where they overlap (col2im): the transposes of the selection
    # matrices conv2d uses to gather patches from an H_out x W_out image.
    S_AU = patch_selection(H_out, H, K, stride, padding, x_NCHW.dtype)  # A = (i, h)
    S_BV = patch_selection(W_out, W, K, stride, padding, x_NCHW.dtype)  # B = (j, w)
    y_NOBU = anp.tensordot(cols_NOAB, S_AU, axes=([2], [0]))
    y_NOUV = anp.tensordot(y_NOBU, S_BV, axes=([2], [0]))
    return y_NOUV + anp.reshape(b_O, (1, O, 1, 1))
    ### END SOLUTION
