"""Fast forms of the single and Multiple NCA updates, equal in results to the readable ones.

The readable steps (`CAModel.reference_call`, `multi.reference_step`) evaluate every rule on
every cell and multiply most results by zero. Here:

* all rules perceive once: they see the same view, and since perception is linear each rule's
  first layer is re-indexed to read the perception of the masked multi-layout state directly
  (`multi_first_layer`), so the 16-channel view is never built;
* each rule's second layer writes the multi layout (`multi_kernel`): its output is already the
  multi-layout `dx` (shared RGB / hidden, its own alpha), no full-size per-rule `dx` tensors;
* 'sparse': each rule runs only on the cells where its coefficient (update weight x fire mask)
  is non-zero: gather those cells' 3x3 neighbourhoods (`neighbourhoods`, no padded copy of the
  grid), one matmul with the first layer composed with the perception (`perceiving_layer`:
  K = 9 x 17 instead of 51, which also runs better on CPU), the second layer, and a scatter-add
  of the rows back into the state. Every other cell receives exactly `0 * dx` in the readable
  form, so the results agree to float rounding (about 1e-6 per step: the composed layer sums
  in another order). It needs `Where` (a dynamic shape), which neither XLA nor TF.js graph
  execution accept;
* 'dense': every cell, every rule, on the shared perception: static shapes (XLA). TF.js export uses
  the readable step: the wasm backend rejects this form's fused matmul with a 2-D bias.

Both are differentiable exactly where the readable step is (gather and scatter pass gradients).

A rollout (a training step's) prepares the rules' matrices once (`prepare_multi`,
`prepare_single`: the re-indexed, perception-composed first layer and the multi-layout second
layer) and passes them to every step: inside the loop they would be rebuilt, and in the
gradient accumulated, at every step. On a static grid the neighbourhoods are read through a
constant table of neighbour offsets (`neighbour_table`) instead of per-step index arithmetic.
"""

import dataclasses
import functools

import numpy as np
import tensorflow as tf

from tf_multinca import layout
from tf_multinca import perception

IMPLS = ('reference', 'dense', 'sparse')


def check_impl(impl):
  if impl not in IMPLS:
    raise ValueError(f'impl={impl!r}; expected one of {IMPLS}')
  return impl


def rule_matrices(rule):
  """A `CAModel`'s rule as matrices: (w1 `[48, 128]`, b1 `[128]`, w2 `[128, 16]`, b2 `[16]`)."""
  w1 = tf.reshape(rule.conv1.kernel, [layout.perception_n(rule.channel_n), rule.hidden_n])
  w2 = tf.reshape(rule.conv2.kernel, [rule.hidden_n, rule.channel_n])
  return w1, rule.conv1.bias, w2, rule.conv2.bias


def _placement(k, i):
  """`[16, 15 + k]` 0/1 matrix moving single-layout channels to rule `i`'s multi layout.

  RGB and hidden keep their meaning, the alpha goes to `15 + i`, the other alphas get 0.
  """
  cols = [c for c in range(layout.CHANNEL_N) if c != layout.ALPHA]  # multi order, minus alphas
  p = [[0.0] * layout.multi_channels(k) for _ in range(layout.CHANNEL_N)]
  for j, c in enumerate(cols):
    p[c][j] = 1.0
  p[layout.ALPHA][layout.multi_alpha(i)] = 1.0
  return tf.constant(p, tf.float32)


def multi_kernel(rule, i, k):
  """Rule `i`'s second layer writing the multi layout: (w2 `[128, 15 + k]`, b2 `[15 + k]`).

  A product with a constant 0/1 placement matrix (exact: one 1 per column or none): one op,
  and one op in the gradient, where slicing and concatenating would take a dozen.
  """
  _, _, w2, b2 = rule_matrices(rule)
  p = _placement(k, i)
  return tf.matmul(w2, p), tf.linalg.matvec(p, b2, transpose_a=True)


def view_channel(c):
  """The single-layout channel of the view that multi-layout channel `c` feeds."""
  if c < layout.MULTI_HIDDEN.start:
    return c  # RGB
  if c < layout.MULTI_ALPHA0:
    return c - layout.MULTI_HIDDEN.start + layout.HIDDEN.start  # hidden
  return layout.ALPHA  # every rule's alpha adds into the view's alpha


def multi_first_layer(rule, k):
  """Rule's first layer reading the perception of the multi-layout state directly.

  Perception is linear, so `perceive(view) @ w1 == perceive(state) @ w1m`, with `w1m`'s row
  `3c + t` equal to `w1`'s row `3 * view_channel(c) + t`: the view (a channel permutation and
  the sum of the alphas) never needs to be built. The rows are picked by a constant 0/1
  matrix (exact, and a matmul in the gradient rather than a sparse segment sum).

  Returns:
    (w1m `[3 * (15 + k), 128]`, b1 `[128]`).
  """
  w1, b1, _, _ = rule_matrices(rule)
  n = layout.PERCEPTION_KERNELS
  pick = [[0.0] * layout.perception_n() for _ in range(n * layout.multi_channels(k))]
  for c in range(layout.multi_channels(k)):
    for t in range(n):
      pick[n * c + t][n * view_channel(c) + t] = 1.0
  return tf.matmul(tf.constant(pick, tf.float32), w1), b1


PRECISIONS = ('float32', 'mixed_bfloat16')


def check_precision(precision):
  if precision not in PRECISIONS:
    raise ValueError(f'precision={precision!r}; expected one of {PRECISIONS}')
  return precision


def _matmul(a, b, precision='float32'):
  """`a @ b`; with 'mixed_bfloat16' the product runs in bfloat16 (AVX-512 BF16 / AMX on CPUs,
  tensor cores on GPUs) and the result comes back as float32: the states, masks, losses and
  the optimizer stay float32."""
  if precision == 'float32':
    return tf.matmul(a, b)
  return tf.cast(tf.matmul(tf.cast(a, tf.bfloat16), tf.cast(b, tf.bfloat16)), tf.float32)


def _hidden(p, w1, b1, precision='float32'):
  # bias_add (not +): grappler fuses MatMul + BiasAdd + Relu into one oneDNN kernel.
  return tf.nn.relu(tf.nn.bias_add(_matmul(p, w1, precision), b1))


def _selection(rows, m, dtype):
  """The `[N, M]` sparse 0/1 matrix with one 1 per row, at column `rows[n]`: `S x` gathers the
  rows `rows` of `x`, `S^T y` sums `y`'s rows into the rows they name."""
  n = tf.shape(rows, out_type=tf.int64)[0]
  return tf.SparseTensor(tf.stack([tf.range(n), tf.cast(rows, tf.int64)], 1),
                         tf.ones([n], dtype), tf.stack([n, tf.cast(m, tf.int64)]))


@tf.custom_gradient
def gather_rows(params, rows):
  """`tf.gather(params, rows)`, with the gradient summed by a sparse matrix product.

  TF's gradient of a gather is a segment sum of the gathered rows' gradients into zeros
  (`UnsortedSegmentSum`); the product `S^T g` (`_selection`) adds in the same order (bit for
  bit, a test checks) in a third of the CPU time (docs/PERFORMANCE.md).

  Args:
    params: `[M, C]`.
    rows: `[N]` int32 or int64, repeats allowed.

  Returns:
    `[N, C]`.
  """

  def grad(g):
    select = _selection(rows, tf.shape(params)[0], g.dtype)
    return tf.sparse.sparse_dense_matmul(select, g, adjoint_a=True), None

  return tf.gather(params, rows), grad


@tf.custom_gradient
def scatter_add(flat, rows, d):
  """`tf.tensor_scatter_nd_add(flat, rows[:, None], d)` (repeated rows add up) as `flat + S^T d`.

  Faster than TF's CPU TensorScatterAdd (docs/PERFORMANCE.md). Equal up to rounding where rows
  repeat (`flat + (d1 + d2)` rather than `(flat + d1) + d2`).
  The gradient: `g` for `flat`, `g`'s rows for `d`.

  Args:
    flat: `[M, C]`.
    rows: `[N]` int32 or int64.
    d: `[N, C]`.

  Returns:
    `[M, C]`.
  """
  select = _selection(rows, tf.shape(flat)[0], d.dtype)
  out = flat + tf.sparse.sparse_dense_matmul(select, d, adjoint_a=True)

  def grad(g):
    return g, None, tf.gather(g, rows)

  return out, grad


@functools.lru_cache(maxsize=32)
def neighbour_table(h, w, padding):
  """`[H * W, 9]` int32: the flat index (`y * W + x`) of each cell's 3x3 neighbours, tap
  `3 * dy + dx`; a neighbour outside a 'zeros' grid is `H * W` (a zero row the caller appends).
  Built once per grid at trace time (NumPy here, never in the step)."""
  y, x = np.divmod(np.arange(h * w), w)
  dy = np.array([-1, -1, -1, 0, 0, 0, 1, 1, 1])
  dx = np.array([-1, 0, 1, -1, 0, 1, -1, 0, 1])
  ny, nx = y[:, None] + dy, x[:, None] + dx
  if padding == 'circular':
    return (np.mod(ny, h) * w + np.mod(nx, w)).astype(np.int32)
  inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
  return np.where(inside, ny * w + nx, h * w).astype(np.int32)


def neighbourhoods(state, idx, padding):
  """The 3x3 neighbourhoods of the cells `idx`, without padding the grid.

  Args:
    state: `[B, H, W, C]`.
    idx: `[N]` int32 or int64 flat indices of cells of the `[B, H, W]` grid.
    padding: 'circular' (neighbours wrap around) or 'zeros' (neighbours outside read 0).

  Returns:
    `[N, 9, C]`, tap `3 * dy + dx` (row-major, as the perception kernels).
  """
  h, w, c = state.shape[1], state.shape[2], state.shape[-1]
  if h is not None and w is not None:
    # A static grid: one gather from the constant neighbour table, a few ops per step.
    # int32 rows where the whole state's rows fit (a static batch): TF's CPU gather and its
    # gradient run faster on int32 indices (docs/PERFORMANCE.md).
    small = state.shape[0] is not None and state.shape[0] * h * w + 1 < 2 ** 31
    index_dtype = tf.int32 if small else tf.int64
    table = tf.constant(neighbour_table(h, w, padding), index_dtype)
    idx = tf.cast(idx, index_dtype)
    b, r = idx // (h * w), idx % (h * w)
    flat = tf.reshape(state, [-1, c])
    taps = tf.gather(table, r)
    rows = taps + (b * (h * w))[:, None]
    if padding != 'circular':
      # Outside taps (table entry h * w) read one zero row after the whole batch's rows: a
      # plain copy, and a leading slice in the gradient, where a zero row per sample cost a
      # strided copy both ways (docs/PERFORMANCE.md).
      rows = tf.where(taps == h * w, tf.cast(tf.shape(flat)[0], index_dtype), rows)
      flat = tf.concat([flat, tf.zeros([1, c], flat.dtype)], 0)
    return tf.reshape(gather_rows(flat, tf.reshape(rows, [-1])), [-1, 9, c])
  shape = tf.shape(state, out_type=tf.int64)
  h, w = shape[1], shape[2]
  b, r = idx // (h * w), idx % (h * w)
  dy = tf.constant([-1, -1, -1, 0, 0, 0, 1, 1, 1], tf.int64)
  dx = tf.constant([-1, 0, 1, -1, 0, 1, -1, 0, 1], tf.int64)
  y = (r // w)[:, None] + dy
  x = (r % w)[:, None] + dx
  if padding == 'circular':
    y, x, inside = tf.math.floormod(y, h), tf.math.floormod(x, w), None
  else:
    inside = tf.logical_and(tf.logical_and(y >= 0, y < h), tf.logical_and(x >= 0, x < w))
    y, x = tf.clip_by_value(y, 0, h - 1), tf.clip_by_value(x, 0, w - 1)
  rows = tf.reshape(b[:, None] * h * w + y * w + x, [-1])
  nb = tf.reshape(gather_rows(tf.reshape(state, [-1, c]), rows), [-1, 9, c])
  if inside is not None:
    nb *= tf.cast(inside, nb.dtype)[..., None]
  return nb


def gather_perceive(state, idx, padding, angle=0.0):
  """`perception.perceive` of the cells `idx` only.

  Args:
    state: `[B, H, W, C]`.
    idx: `[N]` int64 flat cell indices.
    padding: 'zeros' or 'circular'.
    angle: perception angle.

  Returns:
    `[N, 3C]`, channel `3c + k`.
  """
  c = state.shape[-1]
  nb = tf.transpose(neighbourhoods(state, idx, padding), [0, 2, 1])  # [N, C, 9]
  kernel = tf.reshape(perception.perception_kernels(angle), [9, layout.PERCEPTION_KERNELS])
  return tf.reshape(tf.matmul(tf.reshape(nb, [-1, 9]), kernel), [-1, 3 * c])


def perceiving_layer(w1, channels, angle=0.0):
  """A first layer `[3C, n]` (rows `3c + k`) composed with the perception: `[9C, n]`.

  `perceive(x)[cell] @ w1 == neighbourhood(cell) @ w`, with row `t C + c` of `w` equal to
  `sum_k kernel[t, k] w1[3c + k]` (`t` the tap): one matmul, no perception tensor.
  """
  n = w1.shape[-1]
  kernel = tf.reshape(perception.perception_kernels(angle), [9, layout.PERCEPTION_KERNELS])
  w = tf.transpose(tf.reshape(w1, [channels, layout.PERCEPTION_KERNELS, n]), [1, 0, 2])
  w = tf.matmul(kernel, tf.reshape(w, [layout.PERCEPTION_KERNELS, channels * n]))
  return tf.reshape(w, [9 * channels, n])


@dataclasses.dataclass(frozen=True)
class PreparedRule:
  """One rule's matrices as the sparse step multiplies by them (`prepare_multi`,
  `prepare_single`), built once per rollout rather than at every step.

  Attributes:
    w1: `[9 C, 128]` the first layer composed with the perception (`perceiving_layer`), in
      the state's layout (multi: re-indexed by `multi_first_layer`).
    b1: `[128]`.
    w2: `[128, C]` the second layer, writing the state's layout (multi: `multi_kernel`).
    b2: `[C]`.
    precision: the rule's matmul precision.
  """
  w1: tf.Tensor
  b1: tf.Tensor
  w2: tf.Tensor
  b2: tf.Tensor
  precision: str


def prepare_multi(rules, angle=0.0):
  """The k rules' `PreparedRule`s for `sparse_multi_update` on the multi layout at `angle`."""
  k = len(rules)
  out = []
  for i, r in enumerate(rules):
    w1, b1 = multi_first_layer(r, k)
    w2, b2 = multi_kernel(r, i, k)
    out.append(PreparedRule(perceiving_layer(w1, layout.multi_channels(k), angle), b1, w2, b2,
                            r.precision))
  return tuple(out)


def prepare_single(rule, angle=0.0):
  """`rule`'s `PreparedRule` for `sparse_single_update` at `angle`."""
  w1, b1, w2, b2 = rule_matrices(rule)
  return PreparedRule(perceiving_layer(w1, rule.channel_n, angle), b1, w2, b2, rule.precision)


def sparse_multi_update(state, coef, rules, step_size, angle=0.0, padding='zeros',
                        prepared=None):
  """`state + sum_i coef_i * rule_i * step_size` in the multi layout, each rule only where needed.

  Args:
    state: `[B, H, W, 15 + k]` masked state.
    coef: `[B * H * W, k]` per-rule coefficient (update weight times fire mask); rule `i` runs
      only on the cells where `coef[:, i] != 0`, and only those cells are perceived.
    rules: k `CAModel`s.
    step_size: scalar.
    angle: perception angle.
    padding: the grid edge, 'zeros' or 'circular'.
    prepared: `prepare_multi(rules, angle)`, built once for a rollout; None builds it here.

  Returns:
    `[B * H * W, 15 + k]`.
  """
  k = len(rules)
  channels = layout.multi_channels(k)
  prepared = prepare_multi(rules, angle) if prepared is None else prepared
  rows = [tf.where(tf.not_equal(coef[:, i], 0.0)) for i in range(k)]  # [N_i, 1] int64 each
  deltas = []
  for i, p in enumerate(prepared):
    # Each rule gathers its rows' neighbourhoods and runs one MLP whose first layer includes
    # the perception. A gather per rule rather than one of every rule's rows split afterwards:
    # the split copies them all again (docs/PERFORMANCE.md).
    nb = tf.reshape(neighbourhoods(state, rows[i][:, 0], padding), [-1, 9 * channels])
    h = _hidden(nb, p.w1, p.b1, p.precision)
    # Same order of products as the readable step: (rule * step) * fire * weight.
    c = tf.gather_nd(coef[:, i], rows[i])[:, None]
    deltas.append(tf.nn.bias_add(_matmul(h, p.w2, p.precision), p.b2) * step_size * c)
  flat = tf.reshape(state, [-1, channels])
  # Rows of different rules may coincide (a cell two rules grow into): the updates add up. One
  # scatter-add of every rule's rows: `add_rows` rule by rule (the same sums) measured no
  # faster, each rule's pass copying the whole state (docs/PERFORMANCE.md).
  return scatter_add(flat, tf.concat(rows, 0)[:, 0], tf.concat(deltas, 0))


def dense_multi_update(state, p, coef, rules, step_size):
  """As `sparse_multi_update` on every row; static shapes only (XLA).

  The coefficients scale each rule's 15 + k outputs rather than its 128 hidden units: the
  cheapest place for them.
  """
  k = len(rules)
  for i, r in enumerate(rules):
    w1, b1 = multi_first_layer(r, k)
    w2, b2 = multi_kernel(r, i, k)
    d = tf.nn.bias_add(tf.matmul(_hidden(p, w1, b1), w2), b2)
    state += d * step_size * coef[:, i:i + 1]
  return state


@tf.custom_gradient
def add_rows(flat, rows, d):
  """`flat` with `d` added to its rows `rows`: `tf.tensor_scatter_nd_add(flat, rows[:, None],
  d)` for unique `rows`, bit for bit, in a fraction of the time.

  TF's CPU TensorScatterAdd was the single step's costliest op, more than any matmul
  (docs/PERFORMANCE.md). Here the updated rows are gathered, added to (the same one float
  addition per element) and stitched over a copy of `flat` (`dynamic_stitch`: the later of two
  data for one index wins, which is the updated row). The gradient is the scatter-add's: `g`
  for `flat`, `g`'s rows for `d`.

  Args:
    flat: `[M, C]`.
    rows: `[N]` int32, unique (`tf.where` of a mask).
    d: `[N, C]`.

  Returns:
    `[M, C]`.
  """
  updated = tf.gather(flat, rows) + d
  out = tf.dynamic_stitch([tf.range(tf.shape(flat)[0]), rows], [flat, updated])

  def grad(g):
    return g, None, tf.gather(g, rows)

  return out, grad


def sparse_single_update(x, need, rule, step_size, angle=0.0, prepared=None):
  """`x + rule(perceive(x)) * step_size` on the cells where `need` is set, `x` elsewhere.

  Args:
    x: `[B, H, W, C]` single-layout state.
    need: `[B * H * W]` bool.
    rule: the `CAModel` (its grid edge pads the perception).
    prepared: `prepare_single(rule, angle)`, built once for a rollout; None builds it here.

  Returns:
    `[B * H * W, C]`.
  """
  p = prepare_single(rule, angle) if prepared is None else prepared
  idx = tf.where(need)  # [N, 1] int64
  nb = neighbourhoods(x, idx[:, 0], rule.convention.padding)
  nb = tf.reshape(nb, [-1, 9 * rule.channel_n])
  h = _hidden(nb, p.w1, p.b1, p.precision)
  d = tf.nn.bias_add(_matmul(h, p.w2, p.precision), p.b2) * step_size
  return add_rows(tf.reshape(x, [-1, rule.channel_n]), tf.cast(idx[:, 0], tf.int32), d)
