using Coracle.Node.Tests.Support;

// Writes the images of the packaged add-ons (CoreDNS, local-path-provisioner and its helper, metrics-server), tagged with
// the add-on plugins' default references, into an airgap images folder: bench/addons.sh DATA_DIR puts them in
// DATA_DIR/agent/images before it starts the node. The add-on binaries come from ../shared/components
// (CORACLE_ADDONS_BIN, else ~/.cache/coracle-components/addons).
if (args.Length != 1)
{
    Console.Error.WriteLine("usage: Coracle.Bench.Addons IMAGES_DIR");
    return 2;
}

try
{
    var images = Directory.CreateDirectory(args[0]).FullName;
    AddonImages.WriteCoreDns(images);
    AddonImages.WriteLocalPathProvisioner(images);
    AddonImages.WriteLocalPathHelper(images);
    AddonImages.WriteMetricsServer(images, AddonImages.MetricsServerAddon);
    Console.WriteLine($"add-on images written to {images}");
    return 0;
}
catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException)
{
    Console.Error.WriteLine($"Coracle.Bench.Addons: error: {ex.Message}");
    return 1;
}
