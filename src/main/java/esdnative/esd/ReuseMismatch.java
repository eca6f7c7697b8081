package esdnative.esd;

import esdnative.util.UserError;

/**
 * A saved state of a run with trajectory reuse (a checkpoint, a trace) given to a run without it, or the reverse:
 * the two draw their training points differently. A command says which of its flags turn reuse on or off.
 */
public final class ReuseMismatch extends UserError {
    ReuseMismatch(String message) {
        super(message);
    }
}
