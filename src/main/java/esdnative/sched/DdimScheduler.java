package esdnative.sched;

import esdnative.backend.Backend;
import esdnative.util.UserError;
import esdnative.tensor.Tensor;

/**
 * DDIM (Song et al. 2021) as diffusers 0.21.4's DDIMScheduler computes it: the noise schedule, the inference
 * timesteps ("leading" spacing plus steps_offset), one denoising step for epsilon / v / sample prediction with
 * optional clipping and eta-scaled noise, and the forward process q(x_t | x_0) ({@link #addNoise}).
 *
 * <p>Scalars are float32 like diffusers' (its alphas_cumprod is a float32 tensor); the tensor arithmetic goes
 * through {@link Backend#linearCombination} and {@link Backend#axpy}, so it runs where the latents live.
 * See https://github.com/huggingface/diffusers/blob/v0.21.4/src/diffusers/schedulers/scheduling_ddim.py
 */
public final class DdimScheduler {
    private final DdimConfig config;
    private final float[] alphasCumprod;      // [numTrainTimesteps], ᾱ_t = Π_{s≤t} (1 - β_s)
    private final float finalAlphaCumprod;    // ᾱ used after the last step (t_prev < 0)
    private int[] timesteps = new int[0];     // descending, e.g. 901, 801, ..., 1; set by setTimesteps
    private int numInferenceSteps;            // 0 until setTimesteps

    public DdimScheduler(DdimConfig config) {
        this.config = config;
        float[] betas = config.trainedBetas() != null ? config.trainedBetas().clone() : betas(config);
        alphasCumprod = new float[betas.length];
        // torch.cumprod on CPU accumulates float32 inputs in double and rounds each output to float32
        double product = 1.0;
        for (int t = 0; t < betas.length; t++) {
            product *= 1.0f - betas[t];
            alphasCumprod[t] = (float) product;
        }
        finalAlphaCumprod = config.setAlphaToOne() ? 1.0f : alphasCumprod[0];
    }

    /**
     * The float32 betas: "linear" is linspace(β_start, β_end), "scaled_linear" is linspace(√β_start, √β_end)².
     * The end points are rounded to float32 (torch.linspace(..., dtype=float32) does), the ramp and its square are
     * taken in double and rounded once: this reproduces the fixture's alphas_cumprod bit for bit.
     */
    private static float[] betas(DdimConfig c) {
        boolean scaled = c.betaSchedule().equals("scaled_linear");
        double start = (float) (scaled ? Math.sqrt(c.betaStart()) : c.betaStart());
        double end = (float) (scaled ? Math.sqrt(c.betaEnd()) : c.betaEnd());
        int n = c.numTrainTimesteps();
        double step = (end - start) / (n - 1);
        float[] betas = new float[n];
        for (int i = 0; i < n; i++) {
            double x = start + step * i;
            betas[i] = (float) (scaled ? x * x : x);
        }
        return betas;
    }

    public DdimConfig config() { return config; }

    /** ᾱ_t for t in [0, numTrainTimesteps) (a copy). */
    public float[] alphasCumprod() { return alphasCumprod.clone(); }

    /** diffusers set_timesteps with "leading" spacing: (arange(n) · (T // n))[::-1] + steps_offset. */
    public void setTimesteps(int numInferenceSteps) {
        int trainSteps = config.numTrainTimesteps();
        int most = maxSteps();
        if (numInferenceSteps < 1 || numInferenceSteps > most) {
            throw new UserError("DDIM steps must be in [1, " + most + "] for this scheduler, got " + numInferenceSteps
                    + (most < trainSteps && numInferenceSteps <= trainSteps ? " (with steps_offset " + config.stepsOffset()
                    + " the first timestep would be " + ((numInferenceSteps - 1) * (trainSteps / numInferenceSteps)
                    + config.stepsOffset()) + ", past the last trained one, " + (trainSteps - 1) + ")" : ""));
        }
        this.numInferenceSteps = numInferenceSteps;
        int stepRatio = trainSteps / numInferenceSteps;
        timesteps = new int[numInferenceSteps];
        for (int i = 0; i < numInferenceSteps; i++) {
            timesteps[i] = (numInferenceSteps - 1 - i) * stepRatio + config.stepsOffset();
        }
    }

    /** The most steps whose timesteps all lie in [0, numTrainTimesteps): steps_offset shifts them up. */
    public int maxSteps() {
        int trainSteps = config.numTrainTimesteps();
        int n = trainSteps;
        while (n > 1 && (n - 1) * (trainSteps / n) + config.stepsOffset() >= trainSteps) n--;
        return n;
    }

    /** The inference timesteps, descending (a copy). */
    public int[] timesteps() { return timesteps.clone(); }

    public int numInferenceSteps() { return numInferenceSteps; }

    /** The timestep a step from t lands on: t − T // numInferenceSteps (negative after the last step). */
    public int previousTimestep(int t) {
        if (numInferenceSteps == 0) throw new IllegalStateException("call setTimesteps before stepping");
        return t - config.numTrainTimesteps() / numInferenceSteps;
    }

    /**
     * The scalars of one DDIM step from t, in float32 as diffusers computes them:
     * x̂0 = x0FromSample·x_t + x0FromModel·m, ε̂ = epsFromSample·x_t + epsFromModel·m (before any clipping of x̂0),
     * x_prev = prevFromX0·x̂0 + prevFromEps·ε̂ + noiseScale·z, where m is the model output and z the variance noise.
     */
    public record StepCoefficients(float x0FromSample, float x0FromModel, float epsFromSample, float epsFromModel,
                                   float prevFromX0, float prevFromEps, float noiseScale) {}

    public StepCoefficients coefficients(int t, float eta) {
        checkTimestep(t);
        int prevT = previousTimestep(t);
        float alphaT = alphasCumprod[t];
        float alphaPrev = prevT >= 0 ? alphasCumprod[prevT] : finalAlphaCumprod;
        float betaT = 1 - alphaT;
        float sqrtAlpha = (float) Math.sqrt(alphaT);
        float sqrtBeta = (float) Math.sqrt(betaT);
        // {x0FromSample, x0FromModel, epsFromSample, epsFromModel}
        float[] p = switch (config.predictionType()) {
            // x̂0 = (x_t − √β·ε) / √ᾱ
            case "epsilon" -> new float[] {1 / sqrtAlpha, -sqrtBeta / sqrtAlpha, 0, 1};
            // x̂0 = √ᾱ·x_t − √β·v, ε̂ = √ᾱ·v + √β·x_t
            case "v_prediction" -> new float[] {sqrtAlpha, -sqrtBeta, sqrtBeta, sqrtAlpha};
            // x̂0 = m, ε̂ = (x_t − √ᾱ·x̂0) / √β
            case "sample" -> new float[] {0, 1, 1 / sqrtBeta, -sqrtAlpha / sqrtBeta};
            default -> throw new IllegalStateException(config.predictionType());
        };
        // σ_t = η·√((1 − ᾱ_prev)/(1 − ᾱ_t) · (1 − ᾱ_t/ᾱ_prev)); x_prev = √ᾱ_prev·x̂0 + √(1 − ᾱ_prev − σ²)·ε̂ + σ·z
        float variance = ((1 - alphaPrev) / betaT) * (1 - alphaT / alphaPrev);
        float std = eta * (float) Math.sqrt(variance);
        float direction = (float) Math.sqrt(1 - alphaPrev - std * std);
        return new StepCoefficients(p[0], p[1], p[2], p[3], (float) Math.sqrt(alphaPrev), direction, std);
    }

    /**
     * One DDIM step from timestep t: writes prevSample (x_{t_prev}) and predOriginalSample (x̂0).
     * All tensors hold n = sample.size() elements; varianceNoise (standard normal) is read only when eta > 0.
     * prevSample may alias sample (an in-place step); predOriginalSample must be a tensor of its own.
     */
    public void step(Backend backend, Tensor prevSample, Tensor predOriginalSample, Tensor modelOutput, int t,
                     Tensor sample, float eta, Tensor varianceNoise) {
        long n = sample.size();
        if (eta > 0 && varianceNoise == null) throw new IllegalArgumentException("eta " + eta + " > 0 needs variance noise");
        StepCoefficients c = coefficients(t, eta);
        backend.linearCombination(predOriginalSample, c.x0FromSample(), sample, c.x0FromModel(), modelOutput, n);
        if (config.clipSample()) clamp(backend, predOriginalSample, (float) config.clipSampleRange());
        // x_prev = prevFromEps·(epsFromSample·x_t + epsFromModel·m) + prevFromX0·x̂0 (+ σ·z)
        backend.linearCombination(prevSample, c.prevFromEps() * c.epsFromSample(), sample,
                c.prevFromEps() * c.epsFromModel(), modelOutput, n);
        backend.axpy(prevSample, c.prevFromX0(), predOriginalSample, n);
        if (eta > 0) backend.axpy(prevSample, c.noiseScale(), varianceNoise, n);
    }

    /** q(x_t | x_0): noisy = √ᾱ_t·original + √(1 − ᾱ_t)·noise, for one timestep t over all n elements. */
    public void addNoise(Backend backend, Tensor noisy, Tensor original, Tensor noise, int t) {
        checkTimestep(t);
        float alpha = alphasCumprod[t];
        backend.linearCombination(noisy, (float) Math.sqrt(alpha), original, (float) Math.sqrt(1 - alpha), noise,
                original.size());
    }

    /** clip_sample: x̂0 clamped to [−range, range] (a host round trip; SD configs leave it off). */
    private static void clamp(Backend backend, Tensor x, float range) {
        float[] host = backend.toHost(x);
        for (int i = 0; i < host.length; i++) host[i] = Math.max(-range, Math.min(range, host[i]));
        backend.copyFromHost(x, host, 0);
    }

    private void checkTimestep(int t) {
        if (t < 0 || t >= alphasCumprod.length) {
            throw new IllegalArgumentException("timestep " + t + " outside [0, " + alphasCumprod.length + ")");
        }
    }
}
