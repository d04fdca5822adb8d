/** The IpamDriver methods (see engine/docker-ipam.ts for where pools and addresses come from). */
import type { Engine } from '../engine/engine.js';
import * as ipam from '../engine/docker-ipam.js';
import { PoolRef, ReleaseAddress, RequestAddress, RequestPool, stringOptions } from './protocol.js';
import type { Handlers } from './server.js';

export function ipamDriverHandlers(engine: Engine): Handlers {
  return {
    // berth keeps its pools and addresses in its store: dockerd need not replay them after a restart.
    'IpamDriver.GetCapabilities': async () => ({ RequiresMACAddress: false, RequiresRequestReplay: false }),
    'IpamDriver.GetDefaultAddressSpaces': async () => ({ LocalDefaultAddressSpace: 'berth-local', GlobalDefaultAddressSpace: 'berth-global' }),
    'IpamDriver.RequestPool': async (body) => {
      const req = RequestPool.parse(body);
      const pool = await engine.dockerPlugin('request pool', { pool: req.Pool || '(any)' }, (ctx) => ipam.requestPool(ctx, { pool: req.Pool, subPool: req.SubPool, v6: req.V6 === true }));
      return { PoolID: pool.id, Pool: pool.pool, Data: {} };
    },
    'IpamDriver.ReleasePool': async (body) => {
      const req = PoolRef.parse(body);
      await engine.dockerPlugin('release pool', { pool: req.PoolID }, async (ctx) => ipam.releasePool(ctx, req.PoolID));
      return {};
    },
    'IpamDriver.RequestAddress': async (body) => {
      const req = RequestAddress.parse(body);
      const address = await engine.dockerPlugin('request address', { pool: req.PoolID, address: req.Address || '(any)' }, async (ctx) =>
        ipam.requestAddress(ctx, { poolId: req.PoolID, address: req.Address, options: stringOptions(req.Options) }),
      );
      return { Address: address, Data: {} };
    },
    'IpamDriver.ReleaseAddress': async (body) => {
      const req = ReleaseAddress.parse(body);
      await engine.dockerPlugin('release address', { pool: req.PoolID, address: req.Address }, async (ctx) => ipam.releaseAddress(ctx, req.PoolID, req.Address));
      return {};
    },
  };
}
