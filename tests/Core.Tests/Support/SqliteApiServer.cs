using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Coracle.Core.Configuration;
using Coracle.Core.Identity;
using Coracle.Core.Kubernetes;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;

namespace Coracle.Core.Tests.Support;

/// <summary>
/// The real kube-apiserver (CORACLE_K8S_BIN) with Coracle's certificates and arguments over Coracle's own SQLite datastore
/// (tests/Plugins.Datastore.Sql.TestHost, the plugin's etcd server on a unix socket, as a node runs it), and the datastore's
/// file read directly, the way someone holding the SD card would.
/// </summary>
internal sealed class SqliteApiServer : IAsyncDisposable
{
    private readonly string _dir;
    private readonly ChildProcesses _children = new();
    private Process? _datastore;
    private Process? _apiserver;
    private readonly int _port = FreePorts.Next();

    public SqliteApiServer(string dir)
    {
        _dir = dir;
        Database = Path.Combine(dir, "state.db");
        Socket = Path.Combine(dir, "etcd.sock");
    }

    public string Database { get; }

    public string Socket { get; }

    /// <summary>The server configuration (data dir = the test's folder), with <paramref name="flags"/> on top.</summary>
    public CoracleConfig Config(params (Setting Setting, string Value)[] flags) =>
        TestConfig.Server(_dir, [(Settings.HttpsListenPort, _port.ToString(CultureInfo.InvariantCulture)), (Settings.NodeIp, "127.0.0.1"), .. flags]);

    public string Output => _children.Output;

    public KubeApi Api() => new(new Uri($"https://127.0.0.1:{_port}"), Tls("server-ca.crt"), Tls("client-admin.crt"), Tls("client-admin.key"), TimeSpan.FromSeconds(30));

    private string Tls(string file) => Path.Combine(ClusterCertificates.TlsDir(_dir), file);

    /// <summary>Starts the datastore once (if needed) and kube-apiserver with <paramref name="encryptionConfig"/>; returns when it is ready.</summary>
    public async Task StartAsync(CoracleConfig config, string? encryptionConfig)
    {
        if (_datastore is null)
        {
            _datastore = Start("dotnet", [DatastoreHostDll, Database, Socket]);
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (!Output.Contains("READY", StringComparison.Ordinal))
            {
                if (DateTime.UtcNow > deadline || _datastore.HasExited)
                {
                    throw new InvalidOperationException($"the datastore did not start:\n{Output}");
                }

                await Task.Delay(100);
            }
        }

        ServerIdentity.Prepare(config, NullLogger.Instance);
        var paths = new KubernetesPaths
        {
            TlsDir = ClusterCertificates.TlsDir(_dir),
            CredDir = ServerIdentity.CredDir(_dir),
            DatastoreServers = ["unix://" + Socket],
            AdvertiseAddress = "127.0.0.1",
            EncryptionProviderConfigFile = encryptionConfig,
        };
        _apiserver = Start(Path.Combine(KubernetesBinaries.Folder!, "kube-apiserver"),
            ComponentArgs.Merge(ComponentArgs.ApiServerDefaults(config, paths), config.KubeApiserverArgs));
        using var api = Api();
        await _children.WaitForApiServerAsync(api, _apiserver, "/api/v1/namespaces/default");
    }

    /// <summary>Stops kube-apiserver (the datastore keeps running).</summary>
    public async Task StopApiServerAsync()
    {
        if (_apiserver is { HasExited: false } process)
        {
            process.Kill();
            await process.WaitForExitAsync();
        }
    }

    /// <summary>The current value stored under <paramref name="key"/>, read from the SQLite file itself.</summary>
    public byte[]? StoredValue(string key)
    {
        using var connection = new SqliteConnection($"Data Source={Database};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT l.value FROM coracle_current c JOIN coracle_log l ON l.id = c.id WHERE c.name = $name AND l.deleted = 0";
        command.Parameters.AddWithValue("$name", Encoding.UTF8.GetBytes(key));
        return command.ExecuteScalar() as byte[];
    }

    /// <summary>Every current key below <paramref name="prefix"/> with its stored value.</summary>
    public IReadOnlyList<(string Key, byte[] Value)> StoredValues(string prefix)
    {
        using var connection = new SqliteConnection($"Data Source={Database};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT c.name, l.value FROM coracle_current c JOIN coracle_log l ON l.id = c.id WHERE l.deleted = 0";
        using var reader = command.ExecuteReader();
        var values = new List<(string, byte[])>();
        while (reader.Read())
        {
            var key = Encoding.UTF8.GetString((byte[])reader[0]);
            if (key.StartsWith(prefix, StringComparison.Ordinal))
            {
                values.Add((key, (byte[])reader[1]));
            }
        }

        return values;
    }

    /// <summary>The datastore's files as bytes: the database, its write-ahead log and shared memory, whatever exists.</summary>
    public byte[] RawFiles() =>
        [.. new[] { Database, Database + "-wal", Database + "-shm" }.Where(File.Exists).SelectMany(f =>
        {
            using var stream = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            return copy.ToArray();
        })];

    public async ValueTask DisposeAsync()
    {
        await StopApiServerAsync();
        if (_datastore is { HasExited: false } datastore)
        {
            datastore.Kill();
            await datastore.WaitForExitAsync();
        }

        _apiserver?.Dispose();
        _datastore?.Dispose();
    }

    /// <summary>tests/Plugins.Datastore.Sql.TestHost's build output, beside this test assembly's (same configuration and framework).</summary>
    private static string DatastoreHostDll
    {
        get
        {
            var bin = new DirectoryInfo(AppContext.BaseDirectory); // tests/Core.Tests/bin/CONFIG/TFM/
            var framework = bin.Name;
            var configuration = bin.Parent!.Name;
            return Path.GetFullPath(Path.Combine(bin.FullName, "..", "..", "..", "..", "Plugins.Datastore.Sql.TestHost", "bin",
                configuration, framework, "Coracle.Plugins.Datastore.Sql.TestHost.dll"));
        }
    }

    private Process Start(string file, IEnumerable<string> args) => _children.Start(file, args);
}
