using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Update;

/// <summary>
/// Downloads a bundle over HTTPS into <c>R/update/download/bundle.partial</c> and resumes an interrupted download with
/// a Range request (the URL it belongs to is kept beside it); the server's certificate is checked against the system
/// store and, when given, one more CA file. Plain http:// only with <c>allowHttp</c>.
/// </summary>
internal sealed class BundleDownload(InstallLayout layout, ILogger log, Action<string> fault)
{
    public string? ExtraCaFile { get; init; }

    public bool AllowHttp { get; init; }

    public async Task<string> FetchAsync(Uri url, CancellationToken ct)
    {
        if (url.Scheme != Uri.UriSchemeHttps && !(AllowHttp && url.Scheme == Uri.UriSchemeHttp))
        {
            throw new UpdateException(url.ToString(), $"{url.Scheme}:// is not allowed for bundles", "serve bundles over https:// (or pass --allow-http on a trusted network)", ExitCodes.InvalidConfig);
        }

        Directory.CreateDirectory(layout.DownloadDir);
        var partial = Path.Combine(layout.DownloadDir, "bundle.partial");
        var partialUrl = partial + ".url";
        var done = Path.Combine(layout.DownloadDir, "bundle");
        if (!File.Exists(partialUrl) || File.ReadAllText(partialUrl).Trim() != url.ToString())
        {
            File.Delete(partial);
            AtomicFile.Write(partialUrl, System.Text.Encoding.UTF8.GetBytes(url + "\n"));
        }

        using var client = new HttpClient(Handler()) { Timeout = Timeout.InfiniteTimeSpan };
        var offset = File.Exists(partial) ? new FileInfo(partial).Length : 0;
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (offset > 0)
        {
            request.Headers.Range = new RangeHeaderValue(offset, null);
            log.UpdateDownloadResume(url.ToString(), offset);
        }

        HttpResponseMessage response;
        try
        {
            response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        }
        catch (HttpRequestException ex)
        {
            throw new UpdateException(url.ToString(), $"cannot download: {Inner(ex)}", "check the URL, the network and the server's certificate, then run the same command again", ExitCodes.RuntimeFailure, ex);
        }

        using (response)
        {
            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && offset > 0)
            {
                // The partial file is already complete (or longer than the file now served): start over next time.
                File.Move(partial, done, overwrite: true);
                File.Delete(partialUrl);
                return done;
            }

            if (!response.IsSuccessStatusCode)
            {
                throw new UpdateException(url.ToString(), $"the server answered {(int)response.StatusCode} {response.ReasonPhrase}", "check the bundle URL", ExitCodes.RuntimeFailure);
            }

            var resumed = response.StatusCode == HttpStatusCode.PartialContent && offset > 0;
            if (!resumed)
            {
                offset = 0;
            }

            var total = response.Content.Headers.ContentLength is { } length ? length + offset : (long?)null;
            var received = offset;
            var lastReport = DateTime.UtcNow;
            var faulted = false;
            try
            {
                await using var body = await response.Content.ReadAsStreamAsync(ct);
                await using var file = new FileStream(partial, resumed ? FileMode.Append : FileMode.Create, FileAccess.Write);
                var buffer = new byte[1 << 16];
                int n;
                while ((n = await body.ReadAsync(buffer, ct)) > 0)
                {
                    await file.WriteAsync(buffer.AsMemory(0, n), ct);
                    received += n;
                    if (!faulted)
                    {
                        faulted = true;
                        await file.FlushAsync(ct);
                        fault("download");
                    }

                    if (DateTime.UtcNow - lastReport > TimeSpan.FromSeconds(5))
                    {
                        lastReport = DateTime.UtcNow;
                        log.UpdateDownloadProgress(url.ToString(), received, total?.ToString(CultureInfo.InvariantCulture) ?? "?");
                    }
                }

                file.Flush(flushToDisk: true);
            }
            catch (Exception ex) when (ex is IOException or HttpRequestException)
            {
                throw new UpdateException(url.ToString(), $"the download stopped after {received} of {total?.ToString(CultureInfo.InvariantCulture) ?? "?"} bytes ({Inner(ex)})",
                    "run the same command again: it resumes where it stopped", ExitCodes.RuntimeFailure, ex);
            }

            if (total is { } expected && received != expected)
            {
                throw new UpdateException(url.ToString(), $"the download ended after {received} of {expected} bytes",
                    "run the same command again: it resumes where it stopped", ExitCodes.RuntimeFailure);
            }

            log.UpdateDownloadProgress(url.ToString(), received, total?.ToString(CultureInfo.InvariantCulture) ?? received.ToString(CultureInfo.InvariantCulture));
        }

        File.Move(partial, done, overwrite: true);
        File.Delete(partialUrl);
        AtomicFile.SyncDirectory(layout.DownloadDir);
        return done;
    }

    private static string Inner(Exception ex) => ex.InnerException is { } inner ? $"{ex.Message} {inner.Message}" : ex.Message;

    private SocketsHttpHandler Handler()
    {
        var handler = new SocketsHttpHandler { AutomaticDecompression = DecompressionMethods.None };
        if (ExtraCaFile is { } caFile)
        {
            var extra = new X509Certificate2Collection();
            extra.ImportFromPemFile(caFile);
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (errors == SslPolicyErrors.None)
                {
                    return true;
                }

                if (errors != SslPolicyErrors.RemoteCertificateChainErrors || certificate is null)
                {
                    return false;
                }

                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(extra);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
                return chain.Build(leaf);
            };
        }

        return handler;
    }
}
