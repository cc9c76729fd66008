using System.Text.Json.Nodes;
using Coracle.Core.Addons;

namespace Coracle.Core.Tests.Addons;

public sealed class ManifestParserTests
{
    [Fact]
    public void ParseYaml_MultipleDocuments_EveryObjectWithItsPosition()
    {
        var objects = ManifestParser.Parse("""
            # a comment before the first document
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: one
            ---
            ---
            apiVersion: v1
            kind: Secret
            metadata: {name: two, namespace: apps}
            stringData: {a: b}
            """, "sub/app.yaml");

        Assert.Equal(2, objects.Count);
        Assert.Equal(("ConfigMap", "one", (string?)null, "sub/app.yaml:2:1"), (objects[0].Kind, objects[0].Name, objects[0].Namespace, objects[0].Position));
        Assert.Equal(("Secret", "two", "apps", "sub/app.yaml:8:1"), (objects[1].Kind, objects[1].Name, objects[1].Namespace, objects[1].Position));
    }

    [Fact]
    public void ParseYaml_KindList_ItemsFlattenedWithTheirPositions()
    {
        var objects = ManifestParser.Parse("""
            apiVersion: v1
            kind: List
            items:
            - apiVersion: v1
              kind: ConfigMap
              metadata: {name: a}
            - apiVersion: v1
              kind: ConfigMapList
              items:
              - apiVersion: v1
                kind: ConfigMap
                metadata: {name: b}
            """, "list.yaml");

        Assert.Equal(["a", "b"], objects.Select(o => o.Name));
        Assert.Equal(["list.yaml:4:3", "list.yaml:10:5"], objects.Select(o => o.Position));
    }

    [Fact]
    public void ParseJson_ObjectAndList_Read()
    {
        Assert.Equal("x", Assert.Single(ManifestParser.Parse("""{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"n":"1"}}""", "x.json")).Name);
        var listed = ManifestParser.Parse("""
            {"apiVersion": "v1", "kind": "List", "items": [
              {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}},
              {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "b"}}
            ]}
            """, "l.json");
        Assert.Equal(["a", "b"], listed.Select(o => o.Name));
        Assert.Equal("l.json: items[1]", listed[1].Position);
    }

    [Theory]
    [InlineData("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n", @"^bad\.yaml:\d+:\d+: \S")]
    [InlineData("apiVersion: v1\nkind: ConfigMap\n  bad: indentation\n", @"^bad\.yaml:3:\d+: \S")]
    [InlineData("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nkind: Secret\n", "^bad\\.yaml:4:1: duplicate key \"kind\"$")]
    public void ParseYaml_Syntax_ErrorNamesFileLineAndColumn(string yaml, string expected)
    {
        var error = Assert.Throws<ManifestException>(() => ManifestParser.Parse(yaml, "bad.yaml"));

        Assert.Matches(expected, error.Message);
        Assert.DoesNotContain("Line:", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ParseYaml_MissingFields_EveryErrorWithItsDocumentPosition()
    {
        var error = Assert.Throws<ManifestException>(() => ManifestParser.Parse("""
            apiVersion: v1
            kind: ConfigMap
            metadata: {generateName: x-}
            ---
            kind: Secret
            metadata: {name: s}
            ---
            - just
            - a list
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: fine}
            """, "m.yaml"));

        Assert.Equal(
            "m.yaml:1:1: ConfigMap: metadata.name is missing (an applied object needs a name; generateName cannot be applied); "
            + "m.yaml:5:1: apiVersion is missing; "
            + "m.yaml:8:1: expected a Kubernetes object (a mapping with apiVersion and kind), found a list",
            error.Message);
    }

    [Fact]
    public void ParseJson_Syntax_ErrorNamesLineAndColumn()
    {
        var error = Assert.Throws<ManifestException>(() => ManifestParser.Parse("{\n  \"apiVersion\": \"v1\",\n  \"kind\" \"ConfigMap\"\n}", "b.json"));

        Assert.StartsWith("b.json:3:", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ParseYaml_EmptyFileAndEmptyDocuments_NoObjects()
    {
        Assert.Empty(ManifestParser.Parse("", "e.yaml"));
        Assert.Empty(ManifestParser.Parse("# only a comment\n---\n---\n", "e.yaml"));
    }

    [Theory]
    [InlineData("0644", "420")]
    [InlineData("0x1F", "31")]
    [InlineData("0o17", "15")]
    [InlineData("-12", "-12")]
    [InlineData("1_000", "1000")]
    [InlineData("08", "8")]
    [InlineData("1.5", "1.5")]
    [InlineData("1e3", "1000")]
    [InlineData(".5", "0.5")]
    [InlineData("yes", "true")]
    [InlineData("Off", "false")]
    [InlineData("~", "null")]
    [InlineData("null", "null")]
    [InlineData("12:30", "\"12:30\"")]
    [InlineData("2024-01-02", "\"2024-01-02\"")]
    [InlineData("1.2.3", "\"1.2.3\"")]
    [InlineData("'0644'", "\"0644\"")]
    [InlineData("\"yes\"", "\"yes\"")]
    [InlineData("!!str 5", "\"5\"")]
    [InlineData("hello world", "\"hello world\"")]
    public void ParseYaml_Scalars_ResolvedAsKubectlReadsThem(string scalar, string json)
    {
        var configMap = Assert.Single(ManifestParser.Parse($"apiVersion: v1\nkind: X\nmetadata: {{name: a}}\nvalue: {scalar}\n", "s.yaml"));

        Assert.Equal(json, configMap.Body["value"]?.ToJsonString() ?? "null");
    }

    [Fact]
    public void ParseYaml_AnchorsAliasesAndMergeKeys_Expanded()
    {
        var obj = Assert.Single(ManifestParser.Parse("""
            apiVersion: v1
            kind: X
            metadata: {name: a}
            base: &base {x: 1, y: 2}
            copy: *base
            merged:
              <<: *base
              y: 3
            """, "a.yaml"));

        Assert.Equal("""{"x":1,"y":2}""", obj.Body["copy"]!.ToJsonString());
        Assert.Equal("""{"y":3,"x":1}""", obj.Body["merged"]!.ToJsonString());
    }

    [Fact]
    public void ParseYaml_BlockScalar_StaysAString()
    {
        var obj = Assert.Single(ManifestParser.Parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  f: |\n    line 1\n    0644\n", "b.yaml"));

        Assert.Equal("line 1\n0644\n", obj.Body["data"]!["f"]!.GetValue<string>());
        Assert.IsType<JsonObject>(obj.Body["data"]);
    }
}
