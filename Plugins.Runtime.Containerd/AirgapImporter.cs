using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CliWrap;
using Microsoft.Extensions.Logging;

namespace Coracle.Plugins.Runtime.Containerd;

/// <summary>What one airgap pass did, by file name.</summary>
public sealed record AirgapResult(IReadOnlyList<string> Imported, IReadOnlyList<string> AlreadyImported, IReadOnlyList<string> Failed);

/// <summary>
/// Imports the image tarballs in <c>DATA/agent/images</c> (<c>*.tar</c>, <c>*.tar.gz</c>, <c>*.tgz</c>,
/// <c>*.tar.zst</c>) into containerd's <c>k8s.io</c> namespace with <c>ctr images import</c>, once per file content
/// (sha256 remembered in a state file). A tarball that fails is logged by name and skipped.
/// </summary>
public sealed class AirgapImporter
{
    private readonly string _imagesDir;
    private readonly string _stateFile;
    private readonly string _ctrPath;
    private readonly string _socket;
    private readonly string _snapshotter;
    private readonly string? _zstdPath;
    private readonly ILogger _logger;

    /// <summary>Creates the importer.</summary>
    /// <param name="imagesDir">The folder holding the tarballs.</param>
    /// <param name="stateFile">The JSON file that remembers imported contents.</param>
    /// <param name="ctrPath">containerd's ctr.</param>
    /// <param name="socket">containerd's socket.</param>
    /// <param name="snapshotter">The snapshotter CRI uses, so the images are unpacked for it.</param>
    /// <param name="zstdPath">The zstd CLI for <c>.tar.zst</c>; null skips those files with an error.</param>
    /// <param name="logger">Progress and failures.</param>
    public AirgapImporter(string imagesDir, string stateFile, string ctrPath, string socket, string snapshotter, string? zstdPath, ILogger logger)
    {
        _imagesDir = imagesDir;
        _stateFile = stateFile;
        _ctrPath = ctrPath;
        _socket = socket;
        _snapshotter = snapshotter;
        _zstdPath = zstdPath;
        _logger = logger;
    }

    /// <summary>The tarball name endings imported.</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".tar", ".tar.gz", ".tgz", ".tar.zst"];

    /// <summary>Imports every tarball not imported before. Never throws for a bad tarball.</summary>
    public async Task<AirgapResult> ImportAllAsync(CancellationToken cancellationToken)
    {
        var imported = new List<string>();
        var already = new List<string>();
        var failed = new List<string>();
        if (!Directory.Exists(_imagesDir))
        {
            return new AirgapResult(imported, already, failed);
        }

        var files = Directory.EnumerateFiles(_imagesDir)
            .Where(f => Extensions.Any(e => f.EndsWith(e, StringComparison.OrdinalIgnoreCase)))
            .Order(StringComparer.Ordinal)
            .ToList();
        Log.AirgapFound(_logger, files.Count, _imagesDir);
        var state = LoadState();
        for (var i = 0; i < files.Count; i++)
        {
            var file = files[i];
            var name = Path.GetFileName(file);
            string sha;
            try
            {
                sha = await HashAsync(file, cancellationToken);
            }
            catch (IOException e)
            {
                Log.AirgapFailed(_logger, name, e.Message);
                failed.Add(name);
                continue;
            }

            if (state.ContainsKey(sha))
            {
                Log.AirgapAlreadyImported(_logger, name, sha);
                already.Add(name);
                continue;
            }

            Log.AirgapImporting(_logger, i + 1, files.Count, name, new FileInfo(file).Length);
            var error = await ImportOneAsync(file, cancellationToken);
            if (error is null)
            {
                Log.AirgapImported(_logger, name);
                imported.Add(name);
                state[sha] = name;
                SaveState(state);
            }
            else
            {
                Log.AirgapFailed(_logger, name, error);
                failed.Add(name);
            }
        }

        return new AirgapResult(imported, already, failed);
    }

    /// <summary>The names of the images in containerd's <c>k8s.io</c> namespace; null when ctr fails (the reason logged).</summary>
    public async Task<IReadOnlySet<string>?> ListImagesAsync(CancellationToken cancellationToken)
    {
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        var result = await Cli.Wrap(_ctrPath)
            .WithArguments(["--address", _socket, "--namespace", CtrCommand.KubernetesNamespace, "images", "ls", "-q"])
            .WithValidation(CommandResultValidation.None)
            .WithStandardOutputPipe(PipeTarget.ToStringBuilder(stdout))
            .WithStandardErrorPipe(PipeTarget.ToStringBuilder(stderr))
            .ExecuteAsync(cancellationToken);
        if (result.ExitCode != 0)
        {
            Log.AirgapFailed(_logger, "(image list)", $"ctr exited with {result.ExitCode}: {OneLine(stderr.ToString())}");
            return null;
        }

        return stdout.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>Imports one tarball now (not remembered in the state file); the error, or null.</summary>
    public Task<string?> ImportFileAsync(string file, CancellationToken cancellationToken) => ImportOneAsync(file, cancellationToken);

    /// <summary>The <c>ctr</c> arguments that import from <paramref name="input"/> (a path, or <c>-</c> for stdin).</summary>
    public IReadOnlyList<string> ImportArguments(string input) =>
        ["--address", _socket, "--namespace", CtrCommand.KubernetesNamespace, "images", "import", "--snapshotter", _snapshotter, input];

    private async Task<string?> ImportOneAsync(string file, CancellationToken cancellationToken)
    {
        var name = Path.GetFileName(file);
        var stderr = new StringBuilder();
        var compressedGz = file.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) || file.EndsWith(".tgz", StringComparison.OrdinalIgnoreCase);
        var compressedZst = file.EndsWith(".zst", StringComparison.OrdinalIgnoreCase);
        var args = ImportArguments(compressedGz || compressedZst ? "-" : file);
        var ctr = Cli.Wrap(_ctrPath)
            .WithArguments(args)
            .WithValidation(CommandResultValidation.None)
            .WithStandardOutputPipe(PipeTarget.ToDelegate(line => Log.AirgapProgress(_logger, name, line)))
            .WithStandardErrorPipe(PipeTarget.ToStringBuilder(stderr));
        Log.Running(_logger, $"{_ctrPath} {string.Join(' ', args)}");
        try
        {
            CommandResult result;
            if (compressedGz)
            {
                await using var input = File.OpenRead(file);
                await using var gzip = new GZipStream(input, CompressionMode.Decompress);
                result = await ctr.WithStandardInputPipe(PipeSource.FromStream(gzip)).ExecuteAsync(cancellationToken);
            }
            else if (compressedZst)
            {
                if (_zstdPath is null)
                {
                    return "zstd not found on PATH (install Debian's zstd) to decompress .tar.zst";
                }

                var zstdErr = new StringBuilder();
                var zstd = Cli.Wrap(_zstdPath)
                    .WithArguments(["-dc", "--", file])
                    .WithValidation(CommandResultValidation.None)
                    .WithStandardErrorPipe(PipeTarget.ToStringBuilder(zstdErr));
                result = await (zstd | ctr).ExecuteAsync(cancellationToken);
                if (zstdErr.Length > 0 && result.ExitCode != 0)
                {
                    stderr.Insert(0, zstdErr.ToString().Trim() + "; ");
                }
            }
            else
            {
                result = await ctr.ExecuteAsync(cancellationToken);
            }

            return result.ExitCode == 0 ? null : $"ctr exited with {result.ExitCode}: {OneLine(stderr.ToString())}";
        }
        catch (InvalidDataException e)
        {
            return $"not a valid gzip file: {e.Message}";
        }
        catch (IOException e)
        {
            return e.Message + (stderr.Length > 0 ? ": " + OneLine(stderr.ToString()) : "");
        }
    }

    private static string OneLine(string text) =>
        string.Join(" | ", text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    private static async Task<string> HashAsync(string file, CancellationToken cancellationToken)
    {
        await using var stream = File.OpenRead(file);
        var hash = await SHA256.HashDataAsync(stream, cancellationToken);
        return Convert.ToHexStringLower(hash);
    }

    private Dictionary<string, string> LoadState()
    {
        try
        {
            if (File.Exists(_stateFile))
            {
                return JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(_stateFile)) ?? [];
            }
        }
        catch (JsonException)
        {
            // A damaged state file only means importing again; ctr import is idempotent.
        }

        return [];
    }

    private void SaveState(Dictionary<string, string> state)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(_stateFile)!);
        var temp = _stateFile + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(state, new JsonSerializerOptions { WriteIndented = true }));
        File.Move(temp, _stateFile, overwrite: true);
    }
}
