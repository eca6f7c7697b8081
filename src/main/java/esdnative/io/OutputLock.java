package esdnative.io;

import esdnative.util.UserError;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Keeps two runs from writing one output: an exclusive lock on a hidden sibling {@code .NAME.lock}, taken when a
 * run starts (so the second one refuses before doing any work) and held until its output is in place. The operating
 * system drops the lock of a run that dies; the file is removed when the lock is released. Taking it also proves,
 * up front, that the output's folder is writable.
 */
public final class OutputLock implements AutoCloseable {
    private final Path file;
    private final FileChannel channel;
    private final FileLock lock;

    private OutputLock(Path file, FileChannel channel, FileLock lock) {
        this.file = file;
        this.channel = channel;
        this.lock = lock;
    }

    /**
     * Locks {@code out} for this run.
     *
     * @param flag the option that named the output, for messages
     * @throws UserError when another run holds it, or the folder is missing or not writable
     */
    public static OutputLock acquire(Path out, String flag) {
        Path target = out.toAbsolutePath();
        Path dir = target.getParent();
        if (dir == null || !Files.isDirectory(dir)) throw new UserError(flag + ": folder " + dir + " does not exist");
        AtomicFile.checkNameLength(AtomicFile.partialOf(AtomicFile.partialOf(target)), flag);
        Path file = target.resolveSibling("." + target.getFileName() + ".lock");
        // who holds it, also the proof that the file we locked is the one at the path (see below)
        String holder = ProcessHandle.current().pid() + " " + System.nanoTime() + "\n";
        for (int attempt = 0; ; attempt++) {
            FileChannel channel = null;
            try {
                channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
                FileLock lock = tryLock(channel);
                if (lock == null) {
                    channel.close();
                    throw new UserError(flag + ": " + out + " is being written by another run (it holds " + file
                            + "); wait for it to finish or choose another output");
                }
                channel.truncate(0);
                channel.write(ByteBuffer.wrap(holder.getBytes(StandardCharsets.UTF_8)), 0);
                // a run that released the lock may have removed the file after we opened it: then ours is not the
                // file at the path any more, and we start over
                if (holder.equals(readOrNull(file))) return new OutputLock(file, channel, lock);
                channel.close();
                if (attempt > 10) throw new UserError(flag + ": cannot lock " + file + ": it keeps being replaced");
            } catch (AccessDeniedException e) {
                throw new UserError(flag + ": cannot write in folder " + dir + " (permission denied)", e);
            } catch (IOException e) {
                closeQuietly(channel);
                String why = e instanceof FileSystemException f && f.getReason() != null ? f.getReason() : e.toString();
                throw new UserError(flag + ": cannot write in folder " + dir + " (" + why + ")", e);
            }
        }
    }

    /** Removes the lock file and releases the lock. */
    @Override
    public void close() {
        try {
            Files.deleteIfExists(file);   // before releasing: whoever opened it meanwhile sees it gone and retries
            lock.release();
        } catch (IOException ignored) {
            // the lock goes with the channel; a stale file is harmless (it is only ever locked, never trusted)
        } finally {
            closeQuietly(channel);
        }
    }

    private static FileLock tryLock(FileChannel channel) throws IOException {
        try {
            return channel.tryLock();
        } catch (OverlappingFileLockException e) {   // held by this same process (another run in it)
            return null;
        }
    }

    private static String readOrNull(Path file) throws IOException {
        try {
            return Files.readString(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            return null;
        }
    }

    private static void closeQuietly(FileChannel channel) {
        if (channel == null) return;
        try {
            channel.close();
        } catch (IOException ignored) {
            // nothing left to release
        }
    }
}
