using System.Text.Json;

namespace Coracle.Packaging.Tests.Support;

/// <summary>
/// Builds the images the tests use, once per test run, with the one build command (packaging/build.sh): gateway-x64-full
/// with the real Kubernetes components (from the components folder, checked against packaging/components.lock), and
/// pi-arm64-minimal with --no-components (no arm64 Kubernetes binaries exist here); both at zstd level 1 (fastest; the level only changes size) and without
/// ReadyToRun, which only change size and start time (docs/benchmarks.md), to keep the project within minutes. CORACLE_PACKAGING_IMAGES=DIR uses
/// the images build.sh already wrote into DIR (with its output in DIR/build-PROFILE.log) instead, to re-run the tests
/// without publishing again.
/// </summary>
public sealed class ImagesFixture : IAsyncLifetime, IDisposable
{
    private static readonly string? Prebuilt = Environment.GetEnvironmentVariable("CORACLE_PACKAGING_IMAGES") is { Length: > 0 } d ? d : null;

    private readonly TempDir _out = new("pkg-art");

    public string OutDir => Prebuilt ?? _out.Path;

    public string Tarball(string profile) => Path.Combine(OutDir, $"coracle-{profile}.tar.zst");

    public Dictionary<string, string> BuildOutput { get; } = [];

    /// <summary>The unpacked image of a profile (its usr/lib/coracle folder).</summary>
    public string Unpacked(string profile) => Path.Combine(_out.Path, "unpacked-" + profile, "usr", "lib", "coracle");

    public JsonDocument ImageJson(string profile) => JsonDocument.Parse(File.ReadAllText(Path.Combine(Unpacked(profile), "image.json")));

    public static string ComponentsDir =>
        Environment.GetEnvironmentVariable("CORACLE_COMPONENTS_CACHE") is { Length: > 0 } d ? d : Path.Combine(Environment.GetEnvironmentVariable("HOME") ?? "/root", ".cache", "coracle-components");

    public async Task InitializeAsync()
    {
        foreach (var (profile, extra) in new[] { ("gateway-x64-full", Array.Empty<string>()), ("pi-arm64-minimal", new[] { "--no-components" }) })
        {
            if (Prebuilt is null)
            {
                var (code, stdout, stderr) = await Sh.RunAsync(Path.Combine(Sh.RepoRoot, "packaging", "build.sh"),
                    [profile, "--out", OutDir, "--compression-level", "1", "--no-ready-to-run", .. extra], timeoutSeconds: 900);
                BuildOutput[profile] = stdout + stderr;
                if (code != 0)
                {
                    throw new InvalidOperationException($"packaging/build.sh {profile} failed ({code}): {stdout}{stderr}");
                }
            }
            else
            {
                BuildOutput[profile] = File.ReadAllText(Path.Combine(OutDir, $"build-{profile}.log"));
            }

            var unpack = Path.Combine(_out.Path, "unpacked-" + profile);
            Directory.CreateDirectory(unpack);
            var (tar, _, tarErr) = await Sh.RunAsync("tar", ["--zstd", "-xf", Tarball(profile), "-C", unpack]);
            if (tar != 0)
            {
                throw new InvalidOperationException($"tar -xf {Tarball(profile)}: {tarErr}");
            }
        }
    }

    public Task DisposeAsync()
    {
        Dispose();
        return Task.CompletedTask;
    }

    public void Dispose() => _out.Dispose();
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ImagesCollection : ICollectionFixture<ImagesFixture>
{
    public const string Name = "images";
}
