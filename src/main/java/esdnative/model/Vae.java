package esdnative.model;

import esdnative.model.vae.VaeConfig;
import esdnative.model.vae.VaeDecoder;

/** A loaded VAE decoder: its architecture and float32 parameters. */
public record Vae(VaeConfig config, Weights weights) {
    public VaeDecoder decoder() { return new VaeDecoder(config); }
}
