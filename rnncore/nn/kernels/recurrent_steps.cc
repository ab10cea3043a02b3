// Fused LSTM and GRU step kernels for Unroll (rnncore/nn/fused.py compiles this file on first use).
//
// TensorFlow runs a recurrent step's elementwise math as 10-15 separate ops, each a full pass
// over the step's tensors in memory; these kernels do the same math in one pass per row,
// vectorised by Eigen (the same logistic and tanh TensorFlow's own kernels use). The forward
// kernels also return the step's derivatives, so the backward kernels (for rnncore.nn.unroll's
// hand-written gradient) are a few products per element.
//
// UnrollLstmForwardStep(projection, recurrent, c_prev) -> (h, c, gate_factors, output_factor, forget)
//   z = projection + recurrent, gate blocks i, f, g, o (Keras's order), each [B, H]:
//   c = sigmoid(f) c_prev + sigmoid(i) tanh(g);  h = sigmoid(o) tanh(c);
//   gate_factors = [tanh(g) i'(z), c_prev f'(z), sigmoid(i) g'(z), tanh(c) o'(z)]  (the step's
//   derivatives, d z = [d c, d c, d c, d h] * gate_factors);  output_factor = sigmoid(o) (1 - tanh(c)^2);
//   forget = sigmoid(f).
// UnrollLstmBackwardStep(d_h, d_c_next, gate_factors, output_factor, forget) -> (d_z, d_c_prev)
//   d_c = d_c_next + d_h output_factor;  d_z = [d_c, d_c, d_c, d_h] * gate_factors;  d_c_prev = d_c forget.
// UnrollGruForwardStep(projection, recurrent, h_prev) -> (h, projection_factors, recurrent_factors, carry)
//   Keras's reset_after GRU, blocks z, r, n: update = sigmoid(xz + hz), reset = sigmoid(xr + hr),
//   candidate = tanh(xn + reset hn), h = candidate + update (h_prev - candidate). Every gradient of a
//   step is d_h times a factor: d projection = d_h * projection_factors (3 blocks), d recurrent =
//   d_h * recurrent_factors, and the direct path d h_prev = d_h * carry (carry = update).
// UnrollGruBackwardStep(d_h, projection_factors, recurrent_factors, carry) -> (d_projection, d_recurrent, d_h_prev)

#include <cstdint>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace {

using tensorflow::DEVICE_CPU;
using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Status;
using tensorflow::Tensor;
using tensorflow::TensorShape;
using tensorflow::shape_inference::DimensionHandle;
using tensorflow::shape_inference::InferenceContext;
using tensorflow::shape_inference::ShapeHandle;

using Row = Eigen::Map<Eigen::ArrayXf>;
using ConstRow = Eigen::Map<const Eigen::ArrayXf>;

// [B, G*H] and [B, H] shapes from a [B, G*H] input (G gate blocks).
Status GateShapes(InferenceContext* c, int gates_input, int blocks, ShapeHandle* gates, ShapeHandle* units) {
  TF_RETURN_IF_ERROR(c->WithRank(c->input(gates_input), 2, gates));
  DimensionHandle batch = c->Dim(*gates, 0);
  DimensionHandle h;
  TF_RETURN_IF_ERROR(c->Divide(c->Dim(*gates, 1), blocks, /*evenly_divisible=*/true, &h));
  *units = c->MakeShape({batch, h});
  return Status();
}

// Below this many [B, H] elements a step runs on the calling thread: measured (B=128, H=32 and 128),
// handing the rows to the intra-op threads cost more than it saved (LSTM/Keras 1.45 -> 0.88 at H=32),
// and the other core is better used by the independent products TensorFlow runs beside the recurrence.
constexpr int64_t kInlineElements = 1 << 17;

// Runs `row(first, last)` over the batch's rows: on this thread for small steps, else on the intra-op threads.
template <typename Fn>
void ForRows(OpKernelContext* context, int64_t rows, int64_t units, Fn row) {
  if (rows * units < kInlineElements) {
    row(0, rows);
    return;
  }
  const auto& workers = *context->device()->tensorflow_cpu_worker_threads();
  tensorflow::Shard(workers.num_threads, workers.workers, rows, /*cost_per_unit=*/units * 60, row);
}

// Fails the op (and returns false) when `a` and `b` differ in shape.
bool SameShape(OpKernelContext* context, const Tensor& a, const Tensor& b, const char* names) {
  if (a.shape() == b.shape()) return true;
  context->CtxFailure(__FILE__, __LINE__,
                      tensorflow::errors::InvalidArgument(names, " must have the same shape, got ",
                                                          a.shape().DebugString(), " and ", b.shape().DebugString()));
  return false;
}

class ForwardStep : public OpKernel {
 public:
  explicit ForwardStep(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& projection = context->input(0);
    const Tensor& recurrent = context->input(1);
    const Tensor& c_prev = context->input(2);
    OP_REQUIRES(context, projection.dims() == 2 && projection.dim_size(1) % 4 == 0,
                tensorflow::errors::InvalidArgument("projection must be [B, 4H], got ",
                                                    projection.shape().DebugString()));
    if (!SameShape(context, projection, recurrent, "projection and recurrent")) return;
    const int64_t rows = projection.dim_size(0), units = projection.dim_size(1) / 4;
    OP_REQUIRES(context, c_prev.shape() == TensorShape({rows, units}),
                tensorflow::errors::InvalidArgument("c_prev must be [B, H], got ", c_prev.shape().DebugString()));
    Tensor *h, *c, *gate_factors, *output_factor, *forget;
    OP_REQUIRES_OK(context, context->allocate_output(0, c_prev.shape(), &h));
    OP_REQUIRES_OK(context, context->allocate_output(1, c_prev.shape(), &c));
    OP_REQUIRES_OK(context, context->allocate_output(2, projection.shape(), &gate_factors));
    OP_REQUIRES_OK(context, context->allocate_output(3, c_prev.shape(), &output_factor));
    OP_REQUIRES_OK(context, context->allocate_output(4, c_prev.shape(), &forget));
    const float* p = projection.flat<float>().data();
    const float* r = recurrent.flat<float>().data();
    const float* cp = c_prev.flat<float>().data();
    float* h_out = h->flat<float>().data();
    float* c_out = c->flat<float>().data();
    float* gf_out = gate_factors->flat<float>().data();
    float* of_out = output_factor->flat<float>().data();
    float* f_out = forget->flat<float>().data();
    ForRows(context, rows, units, [&](int64_t first, int64_t last) {
      Eigen::ArrayXf i(units), g(units), o(units), cell_tanh(units);
      for (int64_t b = first; b < last; ++b) {
        const int64_t z = b * 4 * units, u = b * units;
        auto block = [&](int k) { return ConstRow(p + z + k * units, units) + ConstRow(r + z + k * units, units); };
        Row f(f_out + u, units), c_new(c_out + u, units);
        ConstRow c_old(cp + u, units);
        i = block(0).logistic();
        f = block(1).logistic();
        g = block(2).tanh();
        o = block(3).logistic();
        c_new = f * c_old + i * g;
        cell_tanh = c_new.tanh();
        Row(h_out + u, units) = o * cell_tanh;
        Row(gf_out + z, units) = g * i * (1.0f - i);
        Row(gf_out + z + units, units) = c_old * f * (1.0f - f);
        Row(gf_out + z + 2 * units, units) = i * (1.0f - g * g);
        Row(gf_out + z + 3 * units, units) = cell_tanh * o * (1.0f - o);
        Row(of_out + u, units) = o * (1.0f - cell_tanh * cell_tanh);
      }
    });
  }
};

class BackwardStep : public OpKernel {
 public:
  explicit BackwardStep(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& d_h = context->input(0);
    const Tensor& d_c_next = context->input(1);
    const Tensor& gate_factors = context->input(2);
    const Tensor& output_factor = context->input(3);
    const Tensor& forget = context->input(4);
    OP_REQUIRES(context, d_h.dims() == 2,
                tensorflow::errors::InvalidArgument("d_h must be [B, H], got ", d_h.shape().DebugString()));
    const int64_t rows = d_h.dim_size(0), units = d_h.dim_size(1);
    if (!SameShape(context, d_h, d_c_next, "d_h and d_c_next") ||
        !SameShape(context, d_h, output_factor, "d_h and output_factor") ||
        !SameShape(context, d_h, forget, "d_h and forget")) {
      return;
    }
    OP_REQUIRES(context, gate_factors.shape() == TensorShape({rows, 4 * units}),
                tensorflow::errors::InvalidArgument("gate_factors must be [B, 4H], got ",
                                                    gate_factors.shape().DebugString()));
    Tensor *d_z, *d_c_prev;
    OP_REQUIRES_OK(context, context->allocate_output(0, gate_factors.shape(), &d_z));
    OP_REQUIRES_OK(context, context->allocate_output(1, d_h.shape(), &d_c_prev));
    const float* dh = d_h.flat<float>().data();
    const float* dcn = d_c_next.flat<float>().data();
    const float* gf = gate_factors.flat<float>().data();
    const float* of = output_factor.flat<float>().data();
    const float* fg = forget.flat<float>().data();
    float* dz_out = d_z->flat<float>().data();
    float* dcp_out = d_c_prev->flat<float>().data();
    ForRows(context, rows, units, [&](int64_t first, int64_t last) {
      Eigen::ArrayXf d_c(units);
      for (int64_t b = first; b < last; ++b) {
        const int64_t z = b * 4 * units, u = b * units;
        ConstRow d_hidden(dh + u, units);
        d_c = ConstRow(dcn + u, units) + d_hidden * ConstRow(of + u, units);
        for (int k = 0; k < 3; ++k) Row(dz_out + z + k * units, units) = d_c * ConstRow(gf + z + k * units, units);
        Row(dz_out + z + 3 * units, units) = d_hidden * ConstRow(gf + z + 3 * units, units);
        Row(dcp_out + u, units) = d_c * ConstRow(fg + u, units);
      }
    });
  }
};

class GruForwardStep : public OpKernel {
 public:
  explicit GruForwardStep(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& projection = context->input(0);
    const Tensor& recurrent = context->input(1);
    const Tensor& h_prev = context->input(2);
    OP_REQUIRES(context, projection.dims() == 2 && projection.dim_size(1) % 3 == 0,
                tensorflow::errors::InvalidArgument("projection must be [B, 3H], got ",
                                                    projection.shape().DebugString()));
    if (!SameShape(context, projection, recurrent, "projection and recurrent")) return;
    const int64_t rows = projection.dim_size(0), units = projection.dim_size(1) / 3;
    OP_REQUIRES(context, h_prev.shape() == TensorShape({rows, units}),
                tensorflow::errors::InvalidArgument("h_prev must be [B, H], got ", h_prev.shape().DebugString()));
    Tensor *h, *projection_factors, *recurrent_factors, *carry;
    OP_REQUIRES_OK(context, context->allocate_output(0, h_prev.shape(), &h));
    OP_REQUIRES_OK(context, context->allocate_output(1, projection.shape(), &projection_factors));
    OP_REQUIRES_OK(context, context->allocate_output(2, projection.shape(), &recurrent_factors));
    OP_REQUIRES_OK(context, context->allocate_output(3, h_prev.shape(), &carry));
    const float* p = projection.flat<float>().data();
    const float* r = recurrent.flat<float>().data();
    const float* hp = h_prev.flat<float>().data();
    float* h_out = h->flat<float>().data();
    float* pf_out = projection_factors->flat<float>().data();
    float* rf_out = recurrent_factors->flat<float>().data();
    float* carry_out = carry->flat<float>().data();
    ForRows(context, rows, units, [&](int64_t first, int64_t last) {
      Eigen::ArrayXf reset(units), candidate(units), d_candidate(units), d_update(units), d_reset(units);
      for (int64_t b = first; b < last; ++b) {
        const int64_t z = b * 3 * units, u = b * units;
        auto in = [&](const float* base, int k) { return ConstRow(base + z + k * units, units); };
        Row update(carry_out + u, units);  // d h_t / d h_tm1 along the direct path is the update gate
        ConstRow h_old(hp + u, units);
        update = (in(p, 0) + in(r, 0)).logistic();
        reset = (in(p, 1) + in(r, 1)).logistic();
        candidate = (in(p, 2) + reset * in(r, 2)).tanh();
        Row(h_out + u, units) = candidate + update * (h_old - candidate);
        d_candidate = (1.0f - update) * (1.0f - candidate * candidate);  // d(candidate's input) per d h_t
        d_update = (h_old - candidate) * update * (1.0f - update);
        d_reset = d_candidate * in(r, 2) * reset * (1.0f - reset);
        Row(pf_out + z, units) = d_update;
        Row(pf_out + z + units, units) = d_reset;
        Row(pf_out + z + 2 * units, units) = d_candidate;
        Row(rf_out + z, units) = d_update;
        Row(rf_out + z + units, units) = d_reset;
        Row(rf_out + z + 2 * units, units) = d_candidate * reset;
      }
    });
  }
};

class GruBackwardStep : public OpKernel {
 public:
  explicit GruBackwardStep(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& d_h = context->input(0);
    const Tensor& projection_factors = context->input(1);
    const Tensor& recurrent_factors = context->input(2);
    const Tensor& carry = context->input(3);
    OP_REQUIRES(context, d_h.dims() == 2,
                tensorflow::errors::InvalidArgument("d_h must be [B, H], got ", d_h.shape().DebugString()));
    const int64_t rows = d_h.dim_size(0), units = d_h.dim_size(1);
    if (!SameShape(context, d_h, carry, "d_h and carry")) return;
    if (!SameShape(context, projection_factors, recurrent_factors, "projection_factors and recurrent_factors")) return;
    OP_REQUIRES(context, projection_factors.shape() == TensorShape({rows, 3 * units}),
                tensorflow::errors::InvalidArgument("projection_factors must be [B, 3H], got ",
                                                    projection_factors.shape().DebugString()));
    Tensor *d_projection, *d_recurrent, *d_h_prev;
    OP_REQUIRES_OK(context, context->allocate_output(0, projection_factors.shape(), &d_projection));
    OP_REQUIRES_OK(context, context->allocate_output(1, projection_factors.shape(), &d_recurrent));
    OP_REQUIRES_OK(context, context->allocate_output(2, d_h.shape(), &d_h_prev));
    const float* dh = d_h.flat<float>().data();
    const float* pf = projection_factors.flat<float>().data();
    const float* rf = recurrent_factors.flat<float>().data();
    const float* cr = carry.flat<float>().data();
    float* dp_out = d_projection->flat<float>().data();
    float* dr_out = d_recurrent->flat<float>().data();
    float* dhp_out = d_h_prev->flat<float>().data();
    ForRows(context, rows, units, [&](int64_t first, int64_t last) {
      for (int64_t b = first; b < last; ++b) {
        const int64_t z = b * 3 * units, u = b * units;
        ConstRow d_hidden(dh + u, units);
        for (int k = 0; k < 3; ++k) {
          Row(dp_out + z + k * units, units) = d_hidden * ConstRow(pf + z + k * units, units);
          Row(dr_out + z + k * units, units) = d_hidden * ConstRow(rf + z + k * units, units);
        }
        Row(dhp_out + u, units) = d_hidden * ConstRow(cr + u, units);
      }
    });
  }
};

}  // namespace

REGISTER_OP("UnrollLstmForwardStep")
    .Input("projection: float")
    .Input("recurrent: float")
    .Input("c_prev: float")
    .Output("h: float")
    .Output("c: float")
    .Output("gate_factors: float")
    .Output("output_factor: float")
    .Output("forget: float")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle gates, units;
      TF_RETURN_IF_ERROR(GateShapes(c, 0, 4, &gates, &units));
      for (int k : {0, 1, 3, 4}) c->set_output(k, units);
      c->set_output(2, gates);
      return Status();
    });

REGISTER_OP("UnrollLstmBackwardStep")
    .Input("d_h: float")
    .Input("d_c_next: float")
    .Input("gate_factors: float")
    .Input("output_factor: float")
    .Input("forget: float")
    .Output("d_z: float")
    .Output("d_c_prev: float")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle gates, units;
      TF_RETURN_IF_ERROR(GateShapes(c, 2, 4, &gates, &units));
      c->set_output(0, gates);
      c->set_output(1, units);
      return Status();
    });

REGISTER_KERNEL_BUILDER(Name("UnrollLstmForwardStep").Device(DEVICE_CPU), ForwardStep);
REGISTER_KERNEL_BUILDER(Name("UnrollLstmBackwardStep").Device(DEVICE_CPU), BackwardStep);

REGISTER_OP("UnrollGruForwardStep")
    .Input("projection: float")
    .Input("recurrent: float")
    .Input("h_prev: float")
    .Output("h: float")
    .Output("projection_factors: float")
    .Output("recurrent_factors: float")
    .Output("carry: float")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle gates, units;
      TF_RETURN_IF_ERROR(GateShapes(c, 0, 3, &gates, &units));
      for (int k : {0, 3}) c->set_output(k, units);
      for (int k : {1, 2}) c->set_output(k, gates);
      return Status();
    });

REGISTER_OP("UnrollGruBackwardStep")
    .Input("d_h: float")
    .Input("projection_factors: float")
    .Input("recurrent_factors: float")
    .Input("carry: float")
    .Output("d_projection: float")
    .Output("d_recurrent: float")
    .Output("d_h_prev: float")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle gates, units;
      TF_RETURN_IF_ERROR(GateShapes(c, 1, 3, &gates, &units));
      c->set_output(0, gates);
      c->set_output(1, gates);
      c->set_output(2, units);
      return Status();
    });

REGISTER_KERNEL_BUILDER(Name("UnrollGruForwardStep").Device(DEVICE_CPU), GruForwardStep);
REGISTER_KERNEL_BUILDER(Name("UnrollGruBackwardStep").Device(DEVICE_CPU), GruBackwardStep);
