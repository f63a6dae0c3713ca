using System.Runtime.CompilerServices;

// Every import is blittable: no runtime marshalling anywhere in this assembly.
[assembly: DisableRuntimeMarshalling]
