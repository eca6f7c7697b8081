package esdnative.esd;

import esdnative.util.UserError;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class TrainMethodTest {
    @Test
    void paperAliases() {
        assertEquals(TrainMethod.NOXATTN, TrainMethod.parse("esd-u"));
        assertEquals(TrainMethod.XATTN, TrainMethod.parse("ESD-X"));
        assertEquals(TrainMethod.XATTN_STRICT, TrainMethod.parse("xattn-strict"));
    }

    @Test
    void unknownMethodListsTheValidOnes() {
        UserError e = assertThrows(UserError.class, () -> TrainMethod.parse("attn"));
        assertTrue(e.getMessage().contains("noxattn (esd-u)"), e.getMessage());
        assertTrue(e.getMessage().contains("selflayer"), e.getMessage());
    }

    @Test
    void rulesOnCompVisNames() {
        String xattnK = "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight";
        String selfQ = "input_blocks.4.1.transformer_blocks.0.attn1.to_q.weight";
        String timeEmbed = "time_embed.0.weight";
        String resnetTime = "input_blocks.1.0.emb_layers.1.weight"; // diffusers time_emb_proj: trained by ESD-u
        String outConv = "out.2.weight";
        assertTrue(TrainMethod.XATTN.trains(xattnK));
        assertFalse(TrainMethod.NOXATTN.trains(xattnK));
        assertFalse(TrainMethod.NOXATTN.trains(timeEmbed));
        assertTrue(TrainMethod.NOXATTN.trains(resnetTime));
        assertFalse(TrainMethod.NOXATTN.trains(outConv));
        assertTrue(TrainMethod.NOTIME.trains(xattnK));
        assertFalse(TrainMethod.NOTIME.trains(outConv));
        assertTrue(TrainMethod.SELFLAYER.trains(selfQ));
        assertFalse(TrainMethod.SELFLAYER.trains("input_blocks.5.1.transformer_blocks.0.attn1.to_q.weight"));
        assertTrue(TrainMethod.XLAYER.trains("output_blocks.8.1.transformer_blocks.0.attn2.to_out.0.bias"));
        assertFalse(TrainMethod.XATTN_STRICT.trains("output_blocks.8.1.transformer_blocks.0.attn2.to_q.weight"));
        assertTrue(TrainMethod.XATTN_STRICT.trains("output_blocks.8.1.transformer_blocks.0.attn2.to_v.weight"));
    }
}
