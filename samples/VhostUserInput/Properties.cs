using System.Runtime.CompilerServices;

// The interop layer compiled in from src/Common is blittable: no runtime marshalling.
[assembly: DisableRuntimeMarshalling]
