using System.Diagnostics;
using System.Net.Sockets;
using Coracle.Plugins.Datastore.Sql.Storage;
using MySqlConnector;
using Npgsql;

namespace Coracle.Plugins.Datastore.Sql.Tests.Support;

/// <summary>
/// A real PostgreSQL 15 server (Debian <c>postgresql</c>) in a temp dir, run as the <c>postgres</c> OS user, on a
/// unix socket and a loopback port; every store is a fresh database in it. Started once per test collection.
/// </summary>
public sealed class PostgresServer : IStoreFactory, IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "coracle-pg-" + Guid.NewGuid().ToString("N")[..8]);
    private string _pgCtl = "";
    private int _port;

    public string AdminConnectionString => new NpgsqlConnectionStringBuilder { Host = _dir, Port = _port, Username = "postgres", Database = "postgres", Pooling = false }.ToString();

    public async Task InitializeAsync()
    {
        var initdb = Tools.Require("initdb", "postgresql");
        _pgCtl = Tools.Require("pg_ctl", "postgresql");
        _port = Coracle.TestSupport.FreePorts.Next();
        Directory.CreateDirectory(_dir);
        await Check(Tools.RunAsync("chown", ["postgres:postgres", _dir]));
        await Check(Tools.RunAsync("runuser", ["-u", "postgres", "--", initdb, "-D", Path.Combine(_dir, "data"), "-A", "trust", "-U", "postgres", "--no-sync"], timeoutSeconds: 180));
        await Check(Tools.RunAsync("runuser", ["-u", "postgres", "--", _pgCtl, "-D", Path.Combine(_dir, "data"), "-l", Path.Combine(_dir, "postgres.log"), "-w", "-t", "120",
            "-o", $"-k {_dir} -p {_port} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on", "start"], timeoutSeconds: 180));
    }

    public async Task<SqlDialect> NewStoreAsync(string dir)
    {
        var database = "t_" + Guid.NewGuid().ToString("N")[..12];
        await using (var admin = new NpgsqlConnection(AdminConnectionString))
        {
            await admin.OpenAsync();
            await using var create = admin.CreateCommand();
            create.CommandText = $"CREATE DATABASE {database}";
            await create.ExecuteNonQueryAsync();
        }

        return Dialect(database);
    }

    public SqlDialect Dialect(string database) =>
        SqlDialects.Postgres(new NpgsqlConnectionStringBuilder(AdminConnectionString) { Database = database, Pooling = true }.ToString(), $"postgres database {database}");

    public async Task DisposeAsync()
    {
        if (_pgCtl.Length > 0)
        {
            await Tools.RunAsync("runuser", ["-u", "postgres", "--", _pgCtl, "-D", Path.Combine(_dir, "data"), "-m", "immediate", "-w", "stop"], timeoutSeconds: 120);
        }

        Directory.Delete(_dir, recursive: true);
    }

    internal static async Task Check(Task<(int ExitCode, string Stdout, string Stderr)> run)
    {
        var (code, stdout, stderr) = await run;
        Assert.True(code == 0, $"exit {code}: {stdout}{stderr}");
    }
}

/// <summary>A real MariaDB 10.11 server (Debian <c>mariadb-server</c>) in a temp dir on a unix socket; fresh database per store.</summary>
public sealed class MariaDbServer : IStoreFactory, IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "coracle-maria-" + Guid.NewGuid().ToString("N")[..8]);
    private Process? _server;

    private string Socket => Path.Combine(_dir, "mysqld.sock");

    private string AdminConnectionString => new MySqlConnectionStringBuilder { Server = Socket, ConnectionProtocol = MySqlConnectionProtocol.UnixSocket, UserID = "root", Pooling = false }.ToString();

    public async Task InitializeAsync()
    {
        var install = Tools.Require("mariadb-install-db", "mariadb-server");
        var mariadbd = Tools.Require("mariadbd", "mariadb-server");
        Directory.CreateDirectory(_dir);
        var data = Path.Combine(_dir, "data");
        await PostgresServer.Check(Tools.RunAsync(install, ["--no-defaults", "--datadir=" + data, "--user=root", "--auth-root-authentication-method=normal", "--skip-test-db"], timeoutSeconds: 180));
        var psi = new ProcessStartInfo(mariadbd) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[]
        {
            "--no-defaults", "--user=root", "--datadir=" + data, "--socket=" + Socket, "--port=" + Coracle.TestSupport.FreePorts.Next(), "--bind-address=127.0.0.1",
            "--skip-grant-tables", "--pid-file=" + Path.Combine(_dir, "mysqld.pid"), "--log-error=" + Path.Combine(_dir, "error.log"),
            "--innodb-flush-log-at-trx-commit=1", "--max-connections=300", "--innodb-buffer-pool-size=64M",
        })
        {
            psi.ArgumentList.Add(a);
        }

        _server = Process.Start(psi)!;
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await using var c = new MySqlConnection(AdminConnectionString);
                await c.OpenAsync();
                return;
            }
            catch (MySqlException) when (deadline.Elapsed < TimeSpan.FromSeconds(120) && !_server.HasExited)
            {
                await Task.Delay(200);
            }
        }
    }

    public async Task<SqlDialect> NewStoreAsync(string dir)
    {
        var database = "t_" + Guid.NewGuid().ToString("N")[..12];
        await using (var admin = new MySqlConnection(AdminConnectionString))
        {
            await admin.OpenAsync();
            await using var create = admin.CreateCommand();
            create.CommandText = $"CREATE DATABASE {database}";
            await create.ExecuteNonQueryAsync();
        }

        var cs = new MySqlConnectionStringBuilder(AdminConnectionString) { Database = database, Pooling = true }.ToString();
        return SqlDialects.MySql(cs, $"mysql database {database}");
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await Tools.RunAsync(Tools.Require("mariadb-admin", "mariadb-client"), ["--no-defaults", "--socket=" + Socket, "-uroot", "shutdown"], timeoutSeconds: 120);
            if (!_server.WaitForExit(TimeSpan.FromSeconds(60)))
            {
                _server.Kill();
            }

            _server.Dispose();
        }

        Directory.Delete(_dir, recursive: true);
    }
}

[CollectionDefinition("postgres")]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>;

[CollectionDefinition("mariadb")]
public sealed class MariaDbCollection : ICollectionFixture<MariaDbServer>;
