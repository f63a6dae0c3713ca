using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Vhost.User;
using Vhost.User.Messages;
using VhostProbe.Devices;
using VhostUserBackend.Devices.Blk;

namespace VhostProbe;

/// <summary>What a back-end offers, read with the messages a VMM sends before it sets up rings.</summary>
public sealed class ProbeReport
{
    /// <summary>Protocol features the probe acks (when offered) so the gated queries work.</summary>
    public const VhostUserProtocolFeatures QueryFeatures =
        VhostUserProtocolFeatures.MQ | VhostUserProtocolFeatures.ReplyAck | VhostUserProtocolFeatures.Config | VhostUserProtocolFeatures.ConfigureMemorySlots;

    /// <summary>The socket.</summary>
    public required string SocketPath { get; init; }

    /// <summary>The device type used for decoding.</summary>
    public DeviceKind Device { get; init; }

    /// <summary>Whether <see cref="Device"/> was inferred from the features.</summary>
    public bool DeviceInferred { get; init; }

    /// <summary>GET_FEATURES.</summary>
    public ulong Features { get; init; }

    /// <summary>GET_PROTOCOL_FEATURES (None without VHOST_USER_F_PROTOCOL_FEATURES).</summary>
    public VhostUserProtocolFeatures ProtocolFeatures { get; init; }

    /// <summary>GET_QUEUE_NUM, when MQ is offered.</summary>
    public int? QueueCount { get; init; }

    /// <summary>GET_MAX_MEM_SLOTS, when CONFIGURE_MEM_SLOTS is offered.</summary>
    public int? MaxMemorySlots { get; init; }

    /// <summary>Raw config space, when CONFIG is offered and the back-end answered.</summary>
    public byte[]? Config { get; init; }

    /// <summary>Why there is no config space.</summary>
    public string? ConfigError { get; init; }

    /// <summary>Connects and asks.</summary>
    /// <param name="socketPath">The back-end socket.</param>
    /// <param name="device">The device type, or null to infer it.</param>
    /// <param name="timeout">Connection timeout.</param>
    /// <param name="replyTimeout">How long to wait for each reply (null: the front-end's default, 5 s).</param>
    /// <returns>The report.</returns>
    public static ProbeReport Probe(string socketPath, DeviceKind? device, TimeSpan timeout, TimeSpan? replyTimeout = null)
    {
        using VhostUserFrontend fe = VhostUserFrontend.Connect(socketPath, timeout);
        if (replyTimeout is { } t)
        {
            fe.ReplyTimeout = t;
        }

        ulong features = fe.GetFeatures();
        VhostUserProtocolFeatures protocol = VhostUserProtocolFeatures.None;
        int? queues = null;
        int? slots = null;
        byte[]? config = null;
        string? configError = null;
        DeviceKind kind = device ?? FeatureNames.Infer(features);
        if ((features & (ulong)VhostUserVirtioFeatures.ProtocolFeatures) != 0)
        {
            protocol = fe.GetProtocolFeatures();
            fe.SetProtocolFeatures(protocol & QueryFeatures);
            if ((protocol & VhostUserProtocolFeatures.MQ) != 0)
            {
                queues = fe.GetQueueNum();
            }

            if ((protocol & VhostUserProtocolFeatures.ConfigureMemorySlots) != 0)
            {
                slots = fe.GetMaxMemorySlots();
            }
        }

        fe.SetOwner();
        if ((protocol & VhostUserProtocolFeatures.Config) == 0)
        {
            configError = "CONFIG protocol feature not offered";
        }
        else
        {
            uint size = kind switch
            {
                DeviceKind.Blk => VirtioBlkClient.ConfigBytes,
                DeviceKind.Net => 12,
                DeviceKind.Fs => 40,
                _ => 8,
            };
            try
            {
                config = fe.GetConfig(0, size, VhostUserConfigFlags.None);
            }
            catch (VhostUserPeerRefusedException e)
            {
                // The back-end declined (a size-0 reply): reported, not an error. A malformed reply
                // (VhostUserProtocolException) poisoned the connection and fails the probe (found by the
                // malicious-back-end suite: it used to be printed as a config error with exit 0).
                configError = e.Message;
            }
        }

        return new ProbeReport
        {
            SocketPath = socketPath,
            Device = kind,
            DeviceInferred = device is null,
            Features = features,
            ProtocolFeatures = protocol,
            QueueCount = queues,
            MaxMemorySlots = slots,
            Config = config,
            ConfigError = configError,
        };
    }

    /// <summary>Decodes the config space into name/value pairs.</summary>
    /// <returns>The fields (empty without config).</returns>
    public List<KeyValuePair<string, object>> DecodeConfig()
    {
        var fields = new List<KeyValuePair<string, object>>();
        if (Config is not { } c)
        {
            return fields;
        }

        switch (Device)
        {
            case DeviceKind.Blk when c.Length >= 8:
                VirtioBlkConfig b = VirtioBlkConfig.Read(c);
                fields.Add(new("capacity_sectors", b.Capacity));
                fields.Add(new("capacity_bytes", b.Capacity * VirtioBlkClient.SectorSize));
                fields.Add(new("size_max", b.SizeMax));
                fields.Add(new("seg_max", b.SegMax));
                fields.Add(new("blk_size", b.BlockSize));
                fields.Add(new("physical_block_exp", b.PhysicalBlockExponent));
                fields.Add(new("min_io_size", b.MinIoSize));
                fields.Add(new("opt_io_size", b.OptIoSize));
                fields.Add(new("writeback", b.Writeback));
                fields.Add(new("num_queues", b.NumQueues));
                fields.Add(new("max_discard_sectors", b.MaxDiscardSectors));
                fields.Add(new("max_write_zeroes_sectors", b.MaxWriteZeroesSectors));
                break;
            case DeviceKind.Net when c.Length >= 12:
                fields.Add(new("mac", Convert.ToHexString(c, 0, 6).ToLowerInvariant() is var h ? string.Join(':', Enumerable.Range(0, 6).Select(i => h.Substring(i * 2, 2))) : string.Empty));
                fields.Add(new("status", BinaryPrimitives.ReadUInt16LittleEndian(c.AsSpan(6))));
                fields.Add(new("max_virtqueue_pairs", BinaryPrimitives.ReadUInt16LittleEndian(c.AsSpan(8))));
                fields.Add(new("mtu", BinaryPrimitives.ReadUInt16LittleEndian(c.AsSpan(10))));
                break;
            case DeviceKind.Fs when c.Length >= 40:
                int nul = Array.IndexOf(c, (byte)0, 0, 36);
                fields.Add(new("tag", Encoding.UTF8.GetString(c, 0, nul < 0 ? 36 : nul)));
                fields.Add(new("num_request_queues", BinaryPrimitives.ReadUInt32LittleEndian(c.AsSpan(36))));
                break;
            default:
                fields.Add(new("raw", Convert.ToHexString(c)));
                break;
        }

        return fields;
    }

    /// <summary>Writes the report as text.</summary>
    /// <param name="w">Where to.</param>
    public void WriteText(TextWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.WriteLine($"socket:            {SocketPath}");
        w.WriteLine($"device:            {Name(Device)}{(DeviceInferred ? " (inferred from features)" : string.Empty)}");
        w.WriteLine($"features:          0x{Features:x16}");
        foreach (string n in FeatureNames.Decode(Features, Device))
        {
            w.WriteLine($"  {n}");
        }

        w.WriteLine($"protocol features: 0x{(ulong)ProtocolFeatures:x16}");
        foreach (string n in FeatureNames.Decode(ProtocolFeatures))
        {
            w.WriteLine($"  {n}");
        }

        w.WriteLine($"queues:            {(QueueCount?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "n/a (MQ not offered)")}");
        w.WriteLine($"max memory slots:  {(MaxMemorySlots?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "n/a (CONFIGURE_MEM_SLOTS not offered)")}");
        if (Config is null)
        {
            w.WriteLine($"config:            n/a ({ConfigError})");
        }
        else
        {
            w.WriteLine($"config:            {Config.Length} bytes");
            foreach (KeyValuePair<string, object> f in DecodeConfig())
            {
                w.WriteLine($"  {f.Key} = {f.Value}");
            }
        }
    }

    /// <summary>Writes the report as JSON (Utf8JsonWriter: no reflection, NativeAOT-safe).</summary>
    /// <param name="output">Where to.</param>
    public void WriteJson(Stream output)
    {
        using var j = new Utf8JsonWriter(output, new JsonWriterOptions { Indented = true });
        j.WriteStartObject();
        j.WriteString("socket", SocketPath);
        j.WriteString("device", Name(Device));
        j.WriteBoolean("device_inferred", DeviceInferred);
        j.WriteString("features", $"0x{Features:x16}");
        j.WriteNumber("features_value", Features);
        j.WriteStartArray("feature_names");
        foreach (string n in FeatureNames.Decode(Features, Device))
        {
            j.WriteStringValue(n);
        }

        j.WriteEndArray();
        j.WriteString("protocol_features", $"0x{(ulong)ProtocolFeatures:x16}");
        j.WriteNumber("protocol_features_value", (ulong)ProtocolFeatures);
        j.WriteStartArray("protocol_feature_names");
        foreach (string n in FeatureNames.Decode(ProtocolFeatures))
        {
            j.WriteStringValue(n);
        }

        j.WriteEndArray();
        WriteNullable(j, "queue_count", QueueCount);
        WriteNullable(j, "max_memory_slots", MaxMemorySlots);
        if (Config is null)
        {
            j.WriteNull("config");
            j.WriteString("config_error", ConfigError);
        }
        else
        {
            j.WriteStartObject("config");
            foreach (KeyValuePair<string, object> f in DecodeConfig())
            {
                switch (f.Value)
                {
                    case string s:
                        j.WriteString(f.Key, s);
                        break;
                    case ulong u:
                        j.WriteNumber(f.Key, u);
                        break;
                    default:
                        j.WriteNumber(f.Key, Convert.ToInt64(f.Value, System.Globalization.CultureInfo.InvariantCulture));
                        break;
                }
            }

            j.WriteEndObject();
        }

        j.WriteEndObject();
        j.Flush();
        output.WriteByte((byte)'\n');
    }

    /// <summary>The lower-case name of a device type.</summary>
    /// <param name="kind">The type.</param>
    /// <returns>blk, net, fs or unknown.</returns>
    public static string Name(DeviceKind kind) => kind switch
    {
        DeviceKind.Blk => "blk",
        DeviceKind.Net => "net",
        DeviceKind.Fs => "fs",
        _ => "unknown",
    };

    private static void WriteNullable(Utf8JsonWriter j, string name, int? value)
    {
        if (value is { } v)
        {
            j.WriteNumber(name, v);
        }
        else
        {
            j.WriteNull(name);
        }
    }
}
