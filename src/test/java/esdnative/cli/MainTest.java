package esdnative.cli;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class MainTest {
    @Test
    void versionAndHelpExitZero() {
        assertEquals(0, Main.run("--version"));
        assertEquals(0, Main.run("--help"));
    }

    @Test
    void unknownOptionIsUsageError() {
        assertEquals(2, Main.run("--no-such-flag"));
    }
}
