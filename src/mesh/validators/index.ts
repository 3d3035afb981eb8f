import type { SpecValidator } from './context.js';
import { validateDestinationRule } from './destination-rule.js';
import { validateGateway, validateServiceEntry, validateSidecar, validateWorkloadEntry } from './networking-other.js';
import { validateAuthorizationPolicy, validatePeerAuthentication, validateRequestAuthentication } from './security.js';
import { validateTelemetry } from './telemetry.js';
import { validateFleet, validateIstioOperator } from './trellis.js';
import { validateVirtualService } from './virtual-service.js';

/** Semantic validators by kind (the kinds table in ../kinds.ts holds the schemas). */
export const SPEC_VALIDATORS: Readonly<Record<string, SpecValidator>> = Object.freeze({
  VirtualService: validateVirtualService,
  DestinationRule: validateDestinationRule,
  Gateway: validateGateway,
  ServiceEntry: validateServiceEntry,
  Sidecar: validateSidecar,
  WorkloadEntry: validateWorkloadEntry,
  PeerAuthentication: validatePeerAuthentication,
  AuthorizationPolicy: validateAuthorizationPolicy,
  RequestAuthentication: validateRequestAuthentication,
  Telemetry: validateTelemetry,
  IstioOperator: validateIstioOperator,
  Fleet: validateFleet,
});
