package esdnative.sched;

import com.fasterxml.jackson.databind.JsonNode;
import esdnative.util.UserError;
import esdnative.io.Json;

import java.nio.file.Path;

/**
 * The DDIM scheduler's settings, as diffusers 0.21.4 reads them from {@code scheduler/scheduler_config.json}
 * (any scheduler class's file: DDIMScheduler.from_config takes the keys it knows and defaults the rest).
 *
 * @param trainedBetas explicit betas [numTrainTimesteps], or null to compute them from the schedule
 */
public record DdimConfig(int numTrainTimesteps, double betaStart, double betaEnd, String betaSchedule,
                         float[] trainedBetas, boolean clipSample, double clipSampleRange, boolean setAlphaToOne,
                         int stepsOffset, String predictionType, String timestepSpacing) {

    public DdimConfig {
        if (numTrainTimesteps < 2) throw new UserError("scheduler: num_train_timesteps " + numTrainTimesteps + " < 2");
        if (trainedBetas == null && !betaSchedule.equals("linear") && !betaSchedule.equals("scaled_linear")) {
            throw new UserError("scheduler: beta_schedule '" + betaSchedule + "' is not supported (linear, scaled_linear)");
        }
        if (trainedBetas != null && trainedBetas.length != numTrainTimesteps) {
            throw new UserError("scheduler: trained_betas has " + trainedBetas.length + " values, expected " + numTrainTimesteps);
        }
        if (!predictionType.equals("epsilon") && !predictionType.equals("v_prediction") && !predictionType.equals("sample")) {
            throw new UserError("scheduler: prediction_type '" + predictionType + "' is not one of epsilon, v_prediction, sample");
        }
        if (!timestepSpacing.equals("leading")) {
            throw new UserError("scheduler: timestep_spacing '" + timestepSpacing + "' is not supported (leading)");
        }
    }

    /** Stable Diffusion 1.x's schedule (also what tiny-sd-a uses). */
    public static DdimConfig stableDiffusion1() {
        return new DdimConfig(1000, 0.00085, 0.012, "scaled_linear", null, false, 1.0, false, 1, "epsilon", "leading");
    }

    /** Reads a scheduler_config.json; missing keys take DDIMScheduler's defaults. */
    public static DdimConfig read(Path file) {
        JsonNode json = Json.tree(file);
        if (json.path("thresholding").asBoolean(false)) {
            throw new UserError("scheduler: " + file + ": thresholding is not supported");
        }
        if (json.path("rescale_betas_zero_snr").asBoolean(false)) {
            throw new UserError("scheduler: " + file + ": rescale_betas_zero_snr is not supported");
        }
        float[] trained = null;
        JsonNode betas = json.path("trained_betas");
        if (betas.isArray()) {
            trained = new float[betas.size()];
            for (int i = 0; i < trained.length; i++) trained[i] = (float) betas.get(i).asDouble();
        }
        return new DdimConfig(
                json.path("num_train_timesteps").asInt(1000),
                json.path("beta_start").asDouble(0.0001),
                json.path("beta_end").asDouble(0.02),
                json.path("beta_schedule").asText("linear"),
                trained,
                json.path("clip_sample").asBoolean(true),
                json.path("clip_sample_range").asDouble(1.0),
                json.path("set_alpha_to_one").asBoolean(true),
                json.path("steps_offset").asInt(0),
                json.path("prediction_type").asText("epsilon"),
                json.path("timestep_spacing").asText("leading"));
    }
}
