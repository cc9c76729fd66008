using System.Text;
using CliWrap;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Supervision;

/// <summary>
/// Where one process component's stdout and stderr go: its own file <c>LOGS/NAME.log</c> (rotated), never coracle's
/// console. Coracle's log gets only a summary: error-looking lines (<see cref="ErrorLines"/>) at warning, at most
/// five per ten seconds (then one "N more error lines in FILE"), and the last lines of a run that ended unexpectedly.
/// Once a stop has begun, error lines are shutdown noise: they stay in the file (and at debug level).
/// </summary>
internal sealed class ComponentOutput : IDisposable
{
    public const int TailLines = 20;

    /// <summary>Longest line shown in coracle's log; the file keeps all of it.</summary>
    public const int MaxShownChars = 1000;

    private const int BufferSize = 32 * 1024;

    private readonly ILogger _log;
    private readonly ErrorLineLimiter _limiter;
    private readonly long _maxBytes;
    private readonly Queue<string> _tail = new();
    private readonly object _gate = new();
    private RotatingLogFile? _file;
    private bool _stopping;

    public ComponentOutput(string path, ILogger log, TimeProvider time, long maxBytes = RotatingLogFile.DefaultMaxBytes)
    {
        Path = path;
        _log = log;
        _limiter = new ErrorLineLimiter(time);
        _maxBytes = maxBytes;
    }

    public string Path { get; }

    /// <summary>A pipe target for one of the process's streams (each stream needs its own: it keeps a partial line).</summary>
    public PipeTarget Target() => PipeTarget.Create(PumpAsync);

    /// <summary>The last lines of the current run, oldest first.</summary>
    public IReadOnlyList<string> Tail
    {
        get
        {
            lock (_gate)
            {
                return [.. _tail];
            }
        }
    }

    /// <summary>Opens the file for a new run of the process.</summary>
    public void Open()
    {
        lock (_gate)
        {
            _file?.Dispose();
            _file = new RotatingLogFile(Path, _maxBytes);
            _tail.Clear();
        }
    }

    /// <summary>
    /// The process is being stopped (or the whole node is): report what the rate limit held back so far, then keep
    /// later error lines out of the warnings.
    /// </summary>
    public void BeginStop()
    {
        lock (_gate)
        {
            if (_stopping)
            {
                return;
            }

            // Errors held back by the rate limit are still reported, but not as a warning of the stop itself.
            if (_limiter.Drain() is > 0 and var count)
            {
                _log.MoreErrorLinesAtStop(count, Path);
            }

            _stopping = true;
        }
    }

    /// <summary>
    /// The run is over (all output read): closes the file. With <paramref name="unexpectedExit"/> (the process exited
    /// on its own, not because it was asked to stop) its last lines are logged at warning with the file's path.
    /// </summary>
    public void Close(string? unexpectedExit)
    {
        lock (_gate)
        {
            _file?.Dispose();
            _file = null;
            if (_stopping)
            {
                return;
            }

            ReportSuppressed(_limiter.Drain());
            if (unexpectedExit is not null && _tail.Count > 0)
            {
                _log.ExitTail(unexpectedExit, _tail.Count, Path);
                foreach (var line in _tail)
                {
                    _log.ExitTailLine(line);
                }
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _file?.Dispose();
            _file = null;
        }
    }

    /// <summary>Writes a block of whole lines (each ending in '\n') to the file and summarises it.</summary>
    internal void WriteLines(ReadOnlySpan<byte> block)
    {
        lock (_gate)
        {
            if (_file is null)
            {
                // Output after the run was closed (a grandchild holding the pipe): nowhere to go.
                return;
            }

            _file.Write(block);
            var lines = block.Count((byte)'\n');
            var index = 0;
            while (!block.IsEmpty)
            {
                var end = block.IndexOf((byte)'\n');
                var line = block[..end];
                if (line.Length > 0 && line[^1] == (byte)'\r')
                {
                    line = line[..^1];
                }

                if (ErrorLines.IsError(line))
                {
                    OnErrorLine(line);
                }

                if (index >= lines - TailLines)
                {
                    if (_tail.Count == TailLines)
                    {
                        _tail.Dequeue();
                    }

                    _tail.Enqueue(Decode(line));
                }

                block = block[(end + 1)..];
                index++;
            }

            _file.Flush();
            if (!_stopping)
            {
                ReportSuppressed(_limiter.EndedWindow());
            }
        }
    }

    private void OnErrorLine(ReadOnlySpan<byte> line)
    {
        if (_stopping)
        {
            if (_log.IsEnabled(LogLevel.Debug))
            {
                _log.OutputWhileStopping(Decode(line));
            }

            return;
        }

        ReportSuppressed(_limiter.EndedWindow());
        if (_limiter.Allow())
        {
            _log.OutputError(Decode(line));
        }
    }

    private void ReportSuppressed(int count)
    {
        if (count > 0)
        {
            _log.MoreErrorLines(count, Path);
        }
    }

    private static string Decode(ReadOnlySpan<byte> line)
    {
        var text = Encoding.UTF8.GetString(line.Length > MaxShownChars * 4 ? line[..(MaxShownChars * 4)] : line);
        return text.Length > MaxShownChars ? string.Concat(text.AsSpan(0, MaxShownChars), "…") : text;
    }

    private async Task PumpAsync(Stream stream, CancellationToken cancellationToken)
    {
        var buffer = new byte[BufferSize];
        var filled = 0;
        while (true)
        {
            // One byte stays free for the newline a last or overlong line is given.
            var read = await stream.ReadAsync(buffer.AsMemory(filled, buffer.Length - 1 - filled), cancellationToken);
            if (read == 0)
            {
                if (filled > 0)
                {
                    // The last line had no newline; the file gets one.
                    buffer[filled] = (byte)'\n';
                    WriteLines(buffer.AsSpan(0, filled + 1));
                }

                return;
            }

            filled += read;
            var last = buffer.AsSpan(0, filled).LastIndexOf((byte)'\n');
            if (last < 0)
            {
                if (filled >= buffer.Length - 1)
                {
                    // A line longer than the buffer: written in pieces, one per line.
                    buffer[filled] = (byte)'\n';
                    WriteLines(buffer.AsSpan(0, filled + 1));
                    filled = 0;
                }

                continue;
            }

            WriteLines(buffer.AsSpan(0, last + 1));
            var rest = filled - (last + 1);
            buffer.AsSpan(last + 1, rest).CopyTo(buffer);
            filled = rest;
        }
    }
}
