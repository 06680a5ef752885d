"""The gRPC adapters: the door interceptor and the AssetGateway and EnforcementControl servicers."""
